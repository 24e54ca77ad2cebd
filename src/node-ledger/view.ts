// How a participant looks to others (status(), `serve --processes`, `watch`), and a read-only view of a
// GPU's node ledger for tools that do not take part (the CLI): it lists and reads, never locks, writes
// or removes anything.
import { existsSync } from 'node:fs';

import { checkUuid, defaultLedgerDirectory, LedgerPaths } from './directory';
import type { Entry } from './entry';
import { readPolicy, shareBytes } from './policy';
import { reservedOf, scanLedger, type ScannedParticipant, type ScanProblem } from './scan';
import type { Snapshot } from '../types';
import type { ParticipantInfo } from './types';

/** What an entry's participant holds: its declared usage, at least the sum of its sessions. */
export function publishedUsage(entry: Pick<Entry, 'usageBytes' | 'sessions'>): number {
  let sessions = 0;
  for (const s of entry.sessions) sessions += s.bytes;
  return Math.max(entry.usageBytes, sessions);
}

export function describeParticipant(p: Pick<ScannedParticipant, 'entry' | 'liveness' | 'stale'>, self: boolean, share: number | null): ParticipantInfo {
  const { entry } = p;
  return {
    name: entry.name,
    pid: entry.pid,
    uid: entry.uid,
    startTime: entry.startTime,
    self,
    usageBytes: publishedUsage(entry),
    hardBytes: entry.hardBytes,
    reservedBytes: reservedOf(entry),
    reservations: entry.reservations.map((r) => ({ ...r })),
    sessions: entry.sessions.map((s) => ({ ...s })),
    releasableBytes: entry.sessions.reduce((n, s) => n + (s.releasable ? s.bytes : 0), 0),
    shareBytes: share,
    reliefListener: entry.reliefListener,
    liveness: p.liveness,
    stale: p.stale,
    updatedAt: entry.updatedAt,
  };
}

export interface NodeView {
  uuid: string;
  dir: string;
  participants: ParticipantInfo[];
  /** Files not counted as written (a tool shows them; it never repairs them). */
  problems: ScanProblem[];
}

/**
 * Every live participant of one GPU's node ledger, read without joining: no lock, no write, no
 * housekeeping. `usableBytes` (device total − padding) resolves shares given as fractions.
 */
export function readNodeView(options: { uuid: string; dir?: string; policyFile?: string; usableBytes?: number | null }): NodeView {
  const uuid = checkUuid(options.uuid);
  const dir = options.dir ?? defaultLedgerDirectory();
  if (!existsSync(dir)) return { uuid, dir, participants: [], problems: [] };
  const scan = scanLedger(new LedgerPaths(dir, uuid), new Map(), { housekeeping: false });
  const policy = options.policyFile === undefined ? null : readPolicy(options.policyFile).policy;
  const usable = options.usableBytes ?? null;
  return {
    uuid,
    dir,
    participants: scan.participants.map((p) => describeParticipant(p, false, shareBytes(policy, p.entry.name, uuid, usable))),
    problems: scan.problems,
  };
}

export interface NodeViewOptions {
  /** The ledger directory (default VRAMGUARD_NODE_DIR, else /dev/shm, as the guards use). */
  nodeDir?: string;
  /** The node's policy file, for the participants' shares. */
  nodePolicy?: string;
}

export interface ParticipantRow {
  gpu: number;
  info: ParticipantInfo;
}

/** Every participant on the snapshot's GPUs; a GPU whose ledger cannot be read shows none. */
export function readParticipants(snapshot: Snapshot | null, options: NodeViewOptions): ParticipantRow[] {
  const rows: ParticipantRow[] = [];
  for (const device of snapshot?.devices ?? []) {
    if (!device.uuid) continue;
    try {
      const view = readNodeView({ uuid: device.uuid, dir: options.nodeDir, policyFile: options.nodePolicy, usableBytes: device.memoryTotalBytes });
      for (const info of view.participants) rows.push({ gpu: device.index, info });
    } catch {
      // unreadable directory or policy changed under us: nothing to show for this GPU this pass
    }
  }
  return rows.sort((a, b) => a.gpu - b.gpu || a.info.name.localeCompare(b.info.name) || a.info.pid - b.info.pid);
}

