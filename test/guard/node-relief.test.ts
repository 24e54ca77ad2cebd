// Cross-process relief through the guards (option node, relief on), two guards in one process on one
// GPU: a load that only fits if the other participant lets go makes it release its idle sessions, in
// its own victim order, never a busy or pinned one; without relief the load is refused with the node's
// figures.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';

import { VramQuotaError } from '../../src/errors';
import { type EvictEvent, VramGuard } from '../../src/guard';
import { FakeMonitor } from '../../src/testing';
import { GiB, OUR_PID } from './harness';

const dirs: string[] = [];
const guards: VramGuard[] = [];
afterEach(async () => {
  await Promise.all(guards.splice(0).map((g) => g.close()));
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function pair(relief: boolean) {
  const dir = mkdtempSync(join(tmpdir(), 'vramguard-node-relief-'));
  dirs.push(dir);
  const monitorA = new FakeMonitor([{ totalBytes: 24 * GiB, otherUsedBytes: 0, processes: { [OUR_PID]: 0 } }]);
  const common = { scope: { pids: [OUR_PID] }, quota: { hard: '22GiB' }, padding: 0, idleTtl: null, returnTimeout: '2s' } as const;
  const a = new VramGuard({ ...common, monitor: monitorA, node: { name: 'server-a', dir, relief } });
  const b = new VramGuard({ ...common, monitor: new FakeMonitor([{ totalBytes: 24 * GiB }]), node: { name: 'server-b', dir, relief, reliefTimeout: '3s' } });
  guards.push(a, b);
  let aBytes = 0;
  /** Loads a session on a: its bytes show in a's NVML readings until its dispose. */
  const load = async (id: string, gib: number, options: { pinned?: boolean; priority?: number } = {}) => {
    const reservation = await a.admit(gib * GiB, { id });
    aBytes += gib * GiB;
    monitorA.setProcess(0, OUR_PID, aBytes);
    monitorA.publish();
    return reservation.commit({
      ...options,
      dispose: () => {
        aBytes -= gib * GiB;
        monitorA.setProcess(0, OUR_PID, aBytes);
        monitorA.publish();
      },
    });
  };
  return { a, b, load };
}

describe('node relief through the guards', () => {
  it('another process releases idle sessions in its victim order, never busy or pinned ones', async () => {
    const { a, b, load } = pair(true);
    const evictions: EvictEvent[] = [];
    a.on('evict', (e) => evictions.push(e));
    await load('pinned', 4, { pinned: true });
    await load('busy', 4);
    await load('old', 4);
    await load('new', 4, { priority: 1 });
    let finish!: () => void;
    const using = a.sessions.use('busy', () => new Promise<void>((resolve) => (finish = resolve)));
    try {
      // b needs 14 GiB: the node has 24 - 16 = 8. a gives up 'old' (priority 0) then 'new' (priority 1).
      const reservation = await b.admit('14GiB', { id: 'big' });
      expect(evictions.map((e) => [e.id, e.reason])).toEqual([
        ['old', 'relief'],
        ['new', 'relief'],
      ]);
      expect(a.sessions.get('busy')!.state).toBe('loaded');
      expect(a.sessions.get('pinned')!.state).toBe('loaded');
      expect(b.status().node!.participants.find((p) => p.name === 'server-a')).toMatchObject({ usageBytes: 8 * GiB });
      reservation.cancel();
    } finally {
      finish();
      await using;
    }
  });

  it('without relief the load is refused with the node in the figures, and nothing of the other is evicted', async () => {
    const { a, b, load } = pair(false);
    const evictions: EvictEvent[] = [];
    a.on('evict', (e) => evictions.push(e));
    await load('idle', 16);
    const error = (await b.admit('10GiB', { id: 'big' }).catch((e: unknown) => e)) as VramQuotaError;
    expect(error).toBeInstanceOf(VramQuotaError);
    expect(error.node).toMatchObject({ participant: 'server-b', limitedBy: 'node', nodeFreeBytes: 8 * GiB, participants: 2 });
    expect(evictions).toEqual([]);
  });
});
