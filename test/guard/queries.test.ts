// Queries change nothing: status(), health() and metric scrapes read; only samples and ticks change
// the guard's state. And admissions that cannot fit are refused before anything is evicted.
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';

import { VramQuotaError } from '../../src/errors';
import { type GuardMonitor, VramGuard } from '../../src/guard';
import { FakeClock, FakeMonitor } from '../../src/testing';
import { GiB, harness, OUR_PID } from './harness';

/** Counts every watch, update and remove the guard makes on the monitor. */
function counting(monitor: FakeMonitor): { monitor: GuardMonitor; calls: string[] } {
  const calls: string[] = [];
  const wrapped = Object.create(monitor) as FakeMonitor;
  wrapped.watch = (spec) => {
    calls.push(`watch ${spec.thresholdBytes} ${spec.pids?.join(',') ?? 'device'}`);
    const w = monitor.watch(spec);
    return {
      id: w.id,
      update: (change) => {
        calls.push(`update ${change.pids?.join(',') ?? ''}`);
        w.update(change);
      },
      remove: () => {
        calls.push('remove');
        w.remove();
      },
    };
  };
  return { monitor: wrapped, calls };
}

describe('queries', () => {
  it('a thousand scrapes change no subscription, even when a sample would switch the scope', async () => {
    const clock = new FakeClock();
    const fake = new FakeMonitor([{ totalBytes: 24 * GiB, otherUsedBytes: GiB, processes: { [OUR_PID]: 2 * GiB } }]);
    const { monitor, calls } = counting(fake);
    const guard = new VramGuard({ monitor, clock, scope: { pids: [OUR_PID] }, quota: { hard: '20GiB' } });
    const registry = new Registry();
    guard.metrics(registry);
    expect(calls).toEqual([`watch ${18 * GiB} ${OUR_PID}`, `watch ${20 * GiB} ${OUR_PID}`]);
    // NVML stops attributing our memory: a sample, not yet taken in by the guard (no tick, no crossing).
    fake.setProcess(0, OUR_PID, null);
    fake.publish();
    // Everything but the sample's age (wall time, and health's ok, which follows it) stays the same.
    const read = () => JSON.stringify({ ...guard.status(), sampleAgeMs: undefined, health: { ...guard.health(), sampleAgeMs: undefined, ok: undefined } });
    const before = read();
    for (let i = 0; i < 1000; i += 1) await registry.metrics();
    for (let i = 0; i < 100; i += 1) {
      guard.status();
      guard.health();
    }
    expect(calls).toHaveLength(2);
    expect(read()).toBe(before);
    expect(guard.status().scope.inForce).toBe('device'); // the read already says so...
    // ...and the next tick takes the sample in: one re-subscription, to the device's bytes.
    await clock.advance(1000);
    expect(calls.slice(2)).toEqual(['remove', 'remove', `watch ${18 * GiB} device`, `watch ${20 * GiB} device`]);
    await guard.close();
  });
});

describe('refuse before evicting', () => {
  it('on the ledger: 9 GiB under an 8 GiB hard limit evicts nothing', async () => {
    const clock = new FakeClock();
    const guard = new VramGuard({ libraryPath: '/nonexistent/libnvidia-ml.so.1', quota: { soft: '7GiB', hard: '8GiB' }, clock, idleTtl: null });
    const disposed: string[] = [];
    for (const id of ['a', 'b', 'c']) guard.sessions.register(id, { bytes: '2GiB', dispose: () => disposed.push(id) });
    const error = await guard.admit('9GiB', { id: 'big' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(VramQuotaError);
    expect((error as Error).message).toMatch(/larger than the hard limit/);
    expect(disposed).toEqual([]);
    // Room for 3 GiB only by evicting: one idle session goes (the least recently used).
    await guard.admit('3GiB', { id: 'fits' });
    expect(disposed).toEqual(['a']);
    await guard.close();
  });

  it('when busy and pinned sessions leave no room, nothing idle is evicted in vain', async () => {
    const h = harness({ idleTtl: null });
    h.model('idle', 2);
    const busy = h.model('busy', 8);
    h.model('pinned', 8, { pinned: true });
    let release!: () => void;
    const using = busy.use(() => new Promise<void>((r) => (release = r)));
    await h.advance(200);
    // 22 hard - 18 used = 4 free; evicting idle would make 6: 7 cannot fit.
    const error = await h.guard.admit('7GiB', { id: 'x' }).catch((e: unknown) => e as VramQuotaError);
    expect(error).toBeInstanceOf(VramQuotaError);
    expect(error).toMatchObject({ eviction: { releasedBytes: 0, evicted: [] } });
    expect((error as Error).message).toMatch(/does not fit even after evicting every idle session/);
    expect(h.disposed).toEqual([]);
    // 6 GiB can: idle goes.
    const admitting = h.guard.admit('6GiB', { id: 'y' });
    await h.advance(1000);
    (await admitting).cancel();
    expect(h.disposed).toEqual(['idle']);
    release();
    await using;
    await h.guard.close();
  });
});

describe('status() with option node', () => {
  it("shows the node's view (every participant, the node's room) and reading it changes no file", async () => {
    const { mkdtempSync, readdirSync, rmSync, statSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const dir = mkdtempSync(join(tmpdir(), 'vramguard-node-status-'));
    const fake = () => new FakeMonitor([{ totalBytes: 24 * GiB, otherUsedBytes: 0, processes: { [OUR_PID]: 0 } }]);
    const a = new VramGuard({ monitor: fake(), scope: { pids: [OUR_PID] }, quota: { hard: '20GiB' }, padding: 0, node: { name: 'server-a', dir } });
    const b = new VramGuard({ monitor: fake(), scope: { pids: [OUR_PID] }, quota: { hard: '20GiB' }, padding: 0, node: { name: 'server-b', dir } });
    try {
      const reservation = await a.admit('6GiB', { id: 'llama' });
      reservation.commit({ dispose: () => undefined });
      const held = await b.admit('4GiB', { id: 'embed' });
      const status = b.status();
      expect(status.node).toMatchObject({ name: 'server-b', joined: true, uuid: 'GPU-fake-0', limitedBy: 'node', relief: false, error: null });
      // 24 GiB less a's 6 GiB session and b's own 4 GiB reservation.
      expect(status.node!.freeBytes).toBe(14 * GiB);
      expect(status.usage.freeBytes).toBe(14 * GiB);
      expect(status.node!.participants.map((p) => [p.name, p.self, p.usageBytes / GiB, p.reservedBytes / GiB]).sort()).toEqual([
        ['server-a', false, 6, 0],
        ['server-b', true, 0, 4],
      ]);
      const files = () => readdirSync(dir).map((n) => `${n}:${statSync(join(dir, n)).mtimeMs}`).sort().join();
      const read = () => JSON.stringify({ ...b.status(), sampleAgeMs: undefined, reservations: b.status().reservations.map((r) => r.id) });
      const before = [files(), read()];
      for (let i = 0; i < 100; i += 1) b.status();
      expect([files(), read()]).toEqual(before);
      // The node's figures are in the refusal when the node is what limits.
      const error = (await b.admit('15GiB', { id: 'big' }).catch((e: unknown) => e)) as VramQuotaError;
      expect(error).toBeInstanceOf(VramQuotaError);
      expect(error.node).toMatchObject({ participant: 'server-b', limitedBy: 'node', nodeFreeBytes: 14 * GiB, committedBytes: 10 * GiB, participants: 2 });
      expect(error.message).toMatch(/node free 14336 MiB with 2 participants/);
      held.cancel();
      expect(b.status().node!.participants.find((p) => p.self)!.reservedBytes).toBe(0);
    } finally {
      await a.close();
      await b.close();
      expect(readdirSync(dir).filter((n) => n.endsWith('.json'))).toEqual([]);
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a process over its node share is told: over-share event, and its admissions refused with NodeShareError', async () => {
    const { mkdtempSync, rmSync, writeFileSync, chmodSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const { NodeShareError } = await import('../../src/errors');
    const dir = mkdtempSync(join(tmpdir(), 'vramguard-node-share-'));
    const policyFile = join(dir, 'policy.json');
    writeFileSync(policyFile, JSON.stringify({ participants: { 'server-a': '4GiB' } }));
    chmodSync(policyFile, 0o644);
    const monitor = new FakeMonitor([{ totalBytes: 24 * GiB, otherUsedBytes: 0, processes: { [OUR_PID]: 6 * GiB } }]);
    const guard = new VramGuard({ monitor, scope: { pids: [OUR_PID] }, quota: { hard: '20GiB' }, padding: 0, node: { name: 'server-a', dir, policyFile } });
    const told = new Promise((resolve) => guard.once('over-share', resolve));
    try {
      const error = await guard.admit('1GiB', { id: 'more' }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(NodeShareError);
      expect(error).toMatchObject({ code: 'NODE_SHARE', participant: 'server-a', shareBytes: 4 * GiB, usageBytes: 6 * GiB, neededBytes: GiB });
      expect(await told).toBeInstanceOf(NodeShareError);
      expect(guard.status().node).toMatchObject({ shareBytes: 4 * GiB, limitedBy: 'share', freeBytes: -2 * GiB });
    } finally {
      await guard.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('rejects a bad node option at construction, naming it', () => {
    const monitor = new FakeMonitor([{ totalBytes: 24 * GiB }]);
    expect(() => new VramGuard({ monitor, node: { name: 'has space' } })).toThrow(/node\.name.*"has space"/);
    expect(() => new VramGuard({ monitor, node: { name: 'a', reliefs: true } as never })).toThrow(/node\.reliefs/);
    expect(() => new VramGuard({ monitor, node: { name: 'a', relief: 'yes' } as never })).toThrow(/node\.relief.*"yes"/);
    expect(() => new VramGuard({ monitor, node: { name: 'a', policyFile: '/nonexistent/policy.json' } })).toThrow(/policy\.json/);
  });
});
