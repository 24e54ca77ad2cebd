// The guard's behaviour on a fake monitor and clock: escalation, victims, idle TTL, admission,
// dispose bounds, reloads, trend, drain, scope fallback, and option errors.
import { describe, expect, it } from 'vitest';

import { GuardDrainingError, InvalidOptionError, SessionEvictedError, VramQuotaError } from '../../src/errors';
import { type EvictEvent, VramGuard } from '../../src/guard';
import { FakeClock, FakeMonitor } from '../../src/testing';
import { GiB, harness, OTHER_PID, OUR_PID } from './harness';

describe('options', () => {
  const monitor = () => new FakeMonitor([{ totalBytes: 24 * GiB }]);
  const bad: Array<[object, RegExp]> = [
    [{ quota: { soft: '30GiB', hard: '22GiB' } }, /^quota\.soft: "30GiB" is above quota\.hard \("22GiB"\)$/],
    [{ quota: { hard: -5 } }, /^quota\.hard: expected a non-negative number of bytes, got -5$/],
    [{ quota: { hard: Number.NaN } }, /^quota\.hard: .*got NaN$/],
    [{ quota: { hard: '22 parsecs' } }, /^quota\.hard: cannot read "22 parsecs"/],
    [{ quota: { hard: '120%' } }, /^quota\.hard: expected a percentage in \(0, 100\], got "120%"$/],
    [{ quota: { hard: '30GiB' } }, /^quota\.hard: .* is above the device's total/],
    [{ interval: '5ms' }, /^interval: must be at least 10 ms/],
    [{ idleTtl: 'soon' }, /^idleTtl: cannot read "soon"/],
    [{ device: 'GPU-nope' }, /^device: no device with UUID GPU-nope/],
    [{ device: -1 }, /^device: expected a device index or UUID, got -1$/],
    [{ scope: 'everything' }, /^scope: expected 'process-tree', 'device' or \{ pids: \[...\] \}, got "everything"$/],
    [{ returnRatio: 2 }, /^returnRatio: expected a number in \(0, 1\], got 2$/],
  ];
  for (const [options, message] of bad) {
    it(`rejects ${JSON.stringify(options)}`, () => {
      expect(() => new VramGuard({ ...options, monitor: monitor(), clock: new FakeClock() })).toThrow(InvalidOptionError);
      expect(() => new VramGuard({ ...options, monitor: monitor(), clock: new FakeClock() })).toThrow(message);
    });
  }
  it('takes percentages of the device total', () => {
    const guard = new VramGuard({ quota: { soft: '50%', hard: '75%' }, monitor: monitor(), clock: new FakeClock() });
    expect([guard.softBytes, guard.hardBytes]).toEqual([12 * GiB, 18 * GiB]);
  });
});

describe('escalation at the soft limit', () => {
  it('calls releasers by priority, then evicts idle sessions in victim order until under the target', async () => {
    const h = harness();
    const calls: string[] = [];
    h.guard.addReleaser('kv-cache', () => calls.push('kv-cache'), { priority: 10 });
    h.guard.addReleaser('scratch', () => calls.push('scratch'), { priority: 1 });
    h.model('old-small', 3);
    await h.advance(1000);
    h.model('old-large', 6);
    await h.advance(1000);
    h.model('low-priority', 2, { priority: -1 });
    const busy = h.model('busy', 4);
    h.model('pinned', 4, { pinned: true });
    await h.advance(1000);
    h.model('recent', 2);
    let release!: () => void;
    const inUse = busy.use(() => new Promise<void>((resolve) => (release = resolve)));
    const evicted: EvictEvent[] = [];
    h.guard.on('evict', (e) => evicted.push(e));
    const pressure: unknown[] = [];
    h.guard.on('pressure', (e) => pressure.push(e));
    // 3 + 6 + 2 + 4 + 4 + 2 = 21 GiB > 20 GiB soft; target 19 GiB.
    await h.advance(200);
    await h.advance(2000);
    expect(calls).toEqual(['scratch', 'kv-cache']);
    expect(pressure).toHaveLength(1);
    // Lower priority first, then least recently used: low-priority (2) alone brings 21 -> 19.
    expect(evicted.map((e) => e.id)).toEqual(['low-priority']);
    expect(h.guard.status().usage.scopeBytes).toBe(19 * GiB);
    // Push further (24 GiB): old-small (LRU) goes next, then old-large; busy and pinned never.
    h.leak(5);
    await h.advance(3000);
    expect(evicted.map((e) => e.id)).toEqual(['low-priority', 'old-small', 'old-large']);
    expect(h.disposed).not.toContain('busy');
    expect(h.disposed).not.toContain('pinned');
    release();
    await inUse;
  });

  it('waits for memory to come back before evicting more, and never cascades on lagging readings', async () => {
    const h = harness();
    // a's memory comes back only when the test says so (a slow driver, a lazy framework).
    let giveBack!: () => void;
    h.model('a', 8, {
      dispose: () => {
        giveBack = () => {
          h.held.delete('a');
          h.leak(0);
        };
      },
    });
    await h.advance(1000);
    h.model('b', 8);
    h.model('c', 4);
    const evicted: string[] = [];
    h.guard.on('evict', (e) => evicted.push(e.id));
    await h.advance(500); // 20 GiB: at soft, not above
    h.leak(2); // 22 GiB: above soft; target 19: one eviction (a, the least recently used) is enough
    await h.advance(3000);
    expect(evicted).toEqual(['a']); // still waiting for a's 8 GiB: b is not touched
    await h.advance(3000); // the wait timed out; the reading still lags
    expect(evicted).toEqual(['a']);
    giveBack();
    await h.advance(20_000);
    expect(evicted).toEqual(['a']);
    expect(h.guard.status().usage.scopeBytes).toBe(14 * GiB);
  });
});

describe('idle TTL', () => {
  it('counts from the end of the last use, with per-session overrides', async () => {
    const h = harness({ idleTtl: '5m' });
    const s = h.model('m', 2);
    const short = h.model('short', 1, { idleTtl: '1m' });
    h.model('forever', 1, { idleTtl: null });
    await h.advance(4 * 60_000);
    await s.use(() => h.advance(2 * 60_000)); // a long use: 2 minutes
    expect(h.disposed).toEqual(['short']);
    await h.advance(4 * 60_000 + 59_000); // 4:59 after the use ended
    expect(s.state).toBe('loaded');
    await h.advance(2000);
    expect(s.state).toBe('evicted');
    expect(short.state).toBe('evicted');
    await h.advance(60 * 60_000);
    expect(h.guard.sessions.get('forever')!.state).toBe('loaded');
  });

  it('a use that starts when the expiry is due wins', async () => {
    const h = harness({ idleTtl: '1m' });
    const s = h.model('m', 2);
    await h.advance(59_999);
    const use = s.use(() => h.advance(10)); // starts before the timer fires, ends after its due time
    await use;
    expect(s.state).toBe('loaded');
    await h.advance(60_000);
    expect(s.state).toBe('evicted');
  });
});

describe('admission', () => {
  it('admits what fits and counts reservations so concurrent admits never double-book', async () => {
    const h = harness({ idleTtl: null });
    h.model('resident', 10, { pinned: true });
    await h.advance(200);
    const results = await Promise.allSettled([h.guard.admit('6GiB', { id: 'x' }), h.guard.admit('6GiB', { id: 'y' })]);
    // 22 hard - 10 used = 12 free: the first 6 fits; the second would too (6+6 = 12); a third would not.
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'fulfilled']);
    await expect(h.guard.admit('1GiB', { id: 'z' })).rejects.toBeInstanceOf(VramQuotaError);
    expect(h.guard.status().usage.reservedBytes).toBe(12 * GiB);
    (results[1] as PromiseFulfilledResult<{ cancel(): void }>).value.cancel();
    await expect(h.guard.admit('5GiB', { id: 'z' })).resolves.toBeDefined();
  });

  it('evicts idle sessions to fit, and reports what eviction could not free', async () => {
    const h = harness({ idleTtl: null });
    h.model('idle', 6);
    const busy = h.model('busy', 8);
    h.model('pinned', 4, { pinned: true });
    let release!: () => void;
    const using = busy.use(() => new Promise<void>((r) => (release = r)));
    await h.advance(200);
    const admitted = h.guard.admit('8GiB', { id: 'new' });
    await h.advance(1000);
    const reservation = await admitted;
    expect(h.disposed).toEqual(['idle']);
    const session = reservation.commit({ dispose: () => undefined, pinned: true });
    expect(session.bytes).toBe(8 * GiB);
    const error = await h.guard.admit('10GiB', { id: 'huge' }).catch((e: unknown) => e as VramQuotaError);
    expect(error).toBeInstanceOf(VramQuotaError);
    expect(error).toMatchObject({
      code: 'VRAM_QUOTA',
      id: 'huge',
      neededBytes: 10 * GiB,
      hardBytes: 22 * GiB,
      eviction: {
        blocked: expect.arrayContaining([
          { id: 'busy', bytes: 8 * GiB, reason: 'busy' },
          { id: 'pinned', bytes: 4 * GiB, reason: 'pinned' },
        ]),
      },
    });
    expect((error as Error).message).toMatch(/cannot admit huge \(10240 MiB\)/);
    release();
    await using;
  });

  it('refuses while over the hard limit with nothing to evict, and emits breach', async () => {
    const h = harness();
    const breaches: unknown[] = [];
    h.guard.on('breach', (b) => breaches.push(b));
    h.leak(23);
    await h.advance(300);
    expect(breaches).toHaveLength(1);
    await expect(h.guard.admit('1MiB')).rejects.toThrow(/over the hard limit/);
  });
});

describe('dispose', () => {
  it('runs once, time-bounded; one that throws or hangs is reported and does not block the rest', async () => {
    const h = harness({ disposeTimeout: '2s', idleTtl: null });
    const events: EvictEvent[] = [];
    h.guard.on('evict', (e) => events.push(e));
    h.guard.sessions.register('throws', { bytes: GiB, dispose: () => { throw new Error('boom'); } });
    h.guard.sessions.register('hangs', { bytes: GiB, dispose: () => new Promise(() => undefined) });
    let count = 0;
    h.guard.sessions.register('counted', { bytes: GiB, dispose: () => { count += 1; } });
    const all = h.guard.sessions.unloadAll();
    await h.advance(2500);
    await all;
    await h.guard.sessions.unload('counted');
    expect(count).toBe(1);
    const byId = Object.fromEntries(events.map((e) => [e.id, e]));
    expect(byId.throws!.error?.message).toBe('boom');
    expect(byId.hangs).toMatchObject({ timedOut: true });
    expect(byId.hangs!.error?.message).toMatch(/did not finish within 2000 ms/);
    expect(byId.counted!.error).toBeUndefined();
  });
});

describe('evicted sessions', () => {
  it('reload through admission on next use when they have load; reject typed otherwise', async () => {
    const h = harness({ idleTtl: '1m' });
    let loads = 0;
    const pool = h.model('pooled', 4, {
      load: () => {
        loads += 1;
        h.held.set('pooled', 4 * GiB);
        h.leak(0);
      },
    });
    const plain = h.model('plain', 2);
    await h.advance(61_000);
    expect([pool.state, plain.state]).toEqual(['evicted', 'evicted']);
    const answer = await h.guard.sessions.use('pooled', () => 42);
    expect(answer).toBe(42);
    expect(loads).toBe(1);
    expect(pool.state).toBe('loaded');
    await expect(plain.use(() => 1)).rejects.toBeInstanceOf(SessionEvictedError);
  });
});

describe('trend and recycle', () => {
  it('emits trend when the projected time to the hard limit falls under the horizon, and recycle when idle', async () => {
    const h = harness({ trend: { window: '2m', horizon: '30m' }, recycle: { onLeak: true } });
    const trends: unknown[] = [];
    const recycles: unknown[] = [];
    h.guard.on('trend', (t) => trends.push(t));
    h.guard.on('recycle', (r) => recycles.push(r));
    // Leak 50 MiB a second for 3 minutes: 9 GiB; at that pace the 22 GiB limit is ~3.8 min away.
    for (let second = 0; second < 180; second += 1) {
      h.leak(50 / 1024);
      await h.advance(1000);
    }
    expect(trends.length).toBeGreaterThanOrEqual(1);
    expect(trends[0]).toMatchObject({ hardBytes: 22 * GiB, horizonMs: 30 * 60_000 });
    expect((trends[0] as { slopeBytesPerSecond: number }).slopeBytesPerSecond).toBeCloseTo(50 * 2 ** 20, -5);
    expect(recycles).toEqual([expect.objectContaining({ reason: 'leak' })]);
  });

  it('does not emit trend on a flat usage', async () => {
    const h = harness({ trend: { window: '1m', horizon: '1h' } });
    const trends: unknown[] = [];
    h.guard.on('trend', (t) => trends.push(t));
    h.model('m', 10);
    await h.advance(5 * 60_000);
    expect(trends).toEqual([]);
  });
});

describe('drain and health', () => {
  it('starting until the first sample, ready, draining, closed; drain waits for uses and disposes all', async () => {
    const clock = new FakeClock();
    const monitor = new FakeMonitor([{ totalBytes: 24 * GiB }], { publish: false });
    const guard = new VramGuard({ monitor, clock, quota: { hard: '20GiB' } });
    expect(guard.health().state).toBe('starting');
    monitor.publish();
    await clock.advance(0);
    expect(guard.health()).toMatchObject({ state: 'ready', ok: true });
    const disposed: string[] = [];
    const s = guard.sessions.register('a', { bytes: GiB, dispose: () => disposed.push('a'), pinned: true });
    guard.sessions.register('b', { bytes: GiB, dispose: () => disposed.push('b') });
    let finish!: () => void;
    const use = s.use(() => new Promise<void>((r) => (finish = r)));
    const drained = guard.drain();
    expect(guard.health().state).toBe('draining');
    await expect(guard.admit(1)).rejects.toBeInstanceOf(GuardDrainingError);
    await expect(s.use(() => 1)).rejects.toBeInstanceOf(GuardDrainingError);
    await clock.advance(1000);
    expect(disposed).toEqual([]); // waits for the in-flight use
    finish();
    await use;
    await clock.advance(0);
    await drained;
    expect(disposed.sort()).toEqual(['a', 'b']);
    await guard.close();
    expect(guard.health().state).toBe('closed');
  });
});

describe('scope', () => {
  it('falls back to device scope when NVML reports pids from another namespace, and says why', async () => {
    const clock = new FakeClock();
    const monitor = new FakeMonitor([{ totalBytes: 24 * GiB, processes: { 4_000_000: 5 * GiB } }]);
    const guard = new VramGuard({ monitor, clock, quota: { hard: '20GiB' }, scope: { pids: [OUR_PID] } });
    // A pid that just exited lingers in NVML's list for a moment: not proof of host PIDs yet.
    expect(guard.status().scope).toMatchObject({ inForce: 'pids', reason: null });
    await clock.advance(4000);
    expect(guard.status().scope.inForce).toBe('pids');
    await clock.advance(1500);
    const status = guard.status();
    expect(status.scope.inForce).toBe('device');
    expect(status.scope.reason).toMatch(/only pids not in this PID namespace \(4000000\).*host PIDs/);
    expect(status.usage.scopeBytes).toBe(5 * GiB);
    expect(monitor.watermarkList().every((w) => w.pids === undefined)).toBe(true);
  });

  it('counts only the scope pids when they match', async () => {
    const h = harness();
    h.model('m', 3);
    await h.advance(200);
    const status = h.guard.status();
    expect(status.scope).toMatchObject({ inForce: 'pids', reason: null, pids: [OUR_PID] });
    expect(status.usage.scopeBytes).toBe(3 * GiB);
    expect(status.usage.deviceUsedBytes).toBe(5 * GiB); // with the other process's 2 GiB
    expect(h.monitor.watermarkList()).toEqual([
      { device: 0, thresholdBytes: 20 * GiB, pids: [OUR_PID] },
      { device: 0, thresholdBytes: 22 * GiB, pids: [OUR_PID] },
    ]);
    void OTHER_PID;
  });
});

describe('reload accounting', () => {
  it('counts a reloading session once: its reservation hands over to its own bytes', async () => {
    const h = harness({ idleTtl: '1m' });
    let finishLoad!: () => void;
    h.model('a', 6, {
      load: () =>
        new Promise<void>((resolve) => {
          finishLoad = () => {
            h.held.set('a', 6 * GiB);
            h.leak(0);
            resolve();
          };
        }),
    });
    await h.advance(61_000); // idle: evicted
    const use = h.guard.sessions.use('a', () => 'done');
    await h.advance(200);
    const { usage } = h.guard.status();
    expect(h.guard.sessions.get('a')!.state).toBe('loading');
    expect([usage.scopeBytes, usage.reservedBytes]).toEqual([6 * GiB, 0]);
    // While a loads, 16 GiB are free (22 - 6): a 16 GiB load fits, a 17 GiB one does not.
    await expect(h.guard.admit('17GiB')).rejects.toBeInstanceOf(VramQuotaError);
    (await h.guard.admit('16GiB')).cancel();
    finishLoad();
    await h.advance(200);
    expect(await use).toBe('done');
  });
});
