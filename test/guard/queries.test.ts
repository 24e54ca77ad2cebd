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
