// The node's participants as Prometheus series (`vramguard serve --processes`): every process that
// coordinates on a GPU through the node ledger, read from the ledger directory without joining it.
// One read per snapshot, shared by the series of a scrape.
import type { Registry } from 'prom-client';

import { type NodeViewOptions, type ParticipantRow, readParticipants } from '../node-ledger';
import type { Snapshot } from '../types';
import { promClient } from './prom';

const LABELS = ['gpu', 'participant', 'pid'] as const;

export function registerNodeMetrics(registry: Registry, source: { latest(): Snapshot | null }, options: NodeViewOptions): void {
  const { Gauge } = promClient();
  let memo: { snapshot: Snapshot | null; rows: ParticipantRow[] } | null = null;
  const rows = () => {
    const snapshot = source.latest();
    if (!memo || memo.snapshot !== snapshot) memo = { snapshot, rows: readParticipants(snapshot, options) };
    return memo.rows;
  };
  const labels = (row: ParticipantRow) => ({ gpu: String(row.gpu), participant: row.info.name, pid: String(row.info.pid) });
  const gauge = (name: string, help: string, read: (row: ParticipantRow) => number | null) =>
    new Gauge({
      name,
      help,
      labelNames: LABELS,
      registers: [registry],
      collect() {
        this.reset();
        for (const row of rows()) {
          const value = read(row);
          if (value !== null) this.set(labels(row), value);
        }
      },
    });
  gauge('vramguard_node_participant_used_bytes', "A node participant's usage on the GPU as it declares it, in bytes.", (r) => r.info.usageBytes);
  gauge('vramguard_node_participant_reserved_bytes', "A node participant's admitted loads not yet committed, in bytes.", (r) => r.info.reservedBytes);
  new Gauge({
    name: 'vramguard_node_participant_quota_bytes',
    help: "A node participant's limits: its own hard limit and its share by the node's policy, in bytes.",
    labelNames: [...LABELS, 'limit'],
    registers: [registry],
    collect() {
      this.reset();
      for (const row of rows()) {
        if (row.info.hardBytes !== null) this.set({ ...labels(row), limit: 'hard' }, row.info.hardBytes);
        if (row.info.shareBytes !== null) this.set({ ...labels(row), limit: 'share' }, row.info.shareBytes);
      }
    },
  });
}
