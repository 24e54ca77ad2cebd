// Keep-alive through the guard (fake monitor and clock): the adaptive TTL follows a session's gaps and
// shrinks under pressure (the expiry moves in), a fixed session keeps its TTL, pre-warming loads ahead
// through admission without stamping a use, status() shows the reasoning and stays a pure read, and bad
// keepAlive options fail with one line naming them.
import { describe, expect, it } from 'vitest';

import { InvalidOptionError } from '../../src/errors';
import { type LoadEvent, VramGuard } from '../../src/guard';
import { FakeClock, FakeMonitor } from '../../src/testing';
import { GiB, harness } from './harness';

const info = (guard: VramGuard, id: string) => guard.status().sessions.find((s) => s.id === id)!.keepAlive;

describe('adaptive idle TTL in the guard', () => {
  it('follows the predicted wait of a session used every 40 s; a fixed one keeps its TTL; pressure brings the expiry in', async () => {
    const h = harness({ idleTtl: '5m', keepAlive: { adaptive: true, idleTtl: { min: '30s', max: '4m' } } });
    const a = h.model('a', 2);
    const f = h.model('f', 2, { keepAlive: { adaptive: false } });
    for (let i = 0; i < 10; i += 1) {
      await a.use(() => undefined);
      await f.use(() => undefined);
      if (i < 9) await h.advance(40_000);
    }
    // 9 gaps of 40 s (6 minutes watched, more than the fixed 5 minutes): the prediction rules. The next
    // use is 40 s off; the GPU idle (factor 2), the horizon is 8 minutes, which only an idle time of 8
    // minutes would predict (no gap on record is longer than 40 s): kept for the max.
    const relaxed = info(h.guard, 'a');
    expect(relaxed).toMatchObject({ adaptive: true, ttlBasis: 'prediction', gapMs: 40_000, factor: 2, horizonMs: 480_000, clamped: 'max', ttlMs: 240_000 });
    expect(relaxed.predictedNextUseInMs).toBeCloseTo(40_000, 6);
    expect(info(h.guard, 'f')).toMatchObject({ adaptive: false, ttlBasis: 'fixed', ttlMs: 300_000, predictedNextUseInMs: null });
    // Usage rises towards the soft limit (not over it): the factor falls, the horizon with it, and the
    // TTL (the idle time that predicts a wait past the horizon: the horizon itself) shrinks; the
    // expiry moves in at the next tick.
    h.leak(15);
    await h.advance(2_000);
    const pressed = info(h.guard, 'a');
    expect(pressed.factor).toBeLessThan(0.7);
    expect(pressed.horizonMs).toBeCloseTo(240_000 * pressed.factor!, 6);
    expect(Math.abs(pressed.ttlMs! - pressed.horizonMs!)).toBeLessThan(1_000);
    const evicted: string[] = [];
    h.guard.on('evict', (e) => evicted.push(`${e.id}:${e.reason}`));
    await h.advance(pressed.ttlMs!);
    expect(evicted).toEqual(['a:idle']);
    expect(h.guard.sessions.get('f')!.state).toBe('loaded');
    await h.guard.close();
  });

  it('keeps the fixed TTL until the pattern was watched as long as it (one burst says nothing of the pause)', async () => {
    const h = harness({ idleTtl: '5m', keepAlive: { adaptive: true } });
    const a = h.model('a', 2);
    for (let i = 0; i < 8; i += 1) {
      await a.use(() => undefined);
      await h.advance(3_000);
    }
    expect(info(h.guard, 'a')).toMatchObject({ ttlBasis: 'fallback', ttlMs: 300_000, gapMs: 3_000 });
    await h.guard.close();
  });
});

describe('pre-warming', () => {
  it('reloads an evicted session due within its reload time, through admission, without stamping a use', async () => {
    const h = harness({ idleTtl: '5m', keepAlive: { adaptive: true, prewarm: true } });
    const loads: LoadEvent[] = [];
    h.guard.on('load', (e) => loads.push(e));
    const p = h.model('p', 2, {
      load: async () => {
        h.held.set('p', 2 * GiB);
        h.leak(0);
        await new Promise<void>((resolve) => h.clock.setTimer(resolve, 5_000));
      },
    });
    const useOnce = () => p.use(() => new Promise<void>((resolve) => h.clock.setTimer(resolve, 100)));
    for (let i = 0; i < 18; i += 1) {
      const using = useOnce();
      await h.advance(100);
      await using;
      await h.advance(19_900);
    }
    // Evicted, then used: the reload through the guard is measured (5 s, the admission's wait excluded).
    await h.guard.sessions.unload('p');
    const using = useOnce();
    await h.advance(6_000);
    await using;
    expect(loads).toEqual([{ id: 'p', bytes: 2 * GiB, durationMs: 5_000, prewarm: false }]);
    expect(info(h.guard, 'p').lastLoadMs).toBe(5_000);
    await h.advance(13_000);
    await h.guard.sessions.unload('p');
    const uses = p.uses;
    const windowUses = info(h.guard, 'p').windowUses;
    // Next use predicted 20 s after the last start; a 5 s reload and a 1 s tick: loaded ahead by then.
    await h.advance(6_000);
    expect(loads.at(-1)).toMatchObject({ id: 'p', prewarm: true });
    expect(p.state).toBe('loaded');
    expect(p.uses).toBe(uses);
    expect(info(h.guard, 'p').windowUses).toBe(windowUses);
    expect(h.guard.status().keepAlive.lastPrewarm).toMatchObject({ id: 'p', reloadMs: 5_000, evict: [] });
    // Its TTL counts from the end of the load: armed, and it expires with nothing using it.
    const ttl = info(h.guard, 'p').ttlMs!;
    const evicted: string[] = [];
    h.guard.on('evict', (e) => evicted.push(e.reason));
    await h.advance(ttl + 1_000);
    expect(evicted).toEqual(['idle']);
    await h.guard.close();
  });
});

describe('status() with keepAlive', () => {
  it('shows the reasoning and the forecast, and a thousand reads change nothing', async () => {
    const h = harness({ idleTtl: '5m', keepAlive: { adaptive: true, prewarm: true } });
    const a = h.model('a', 2);
    for (let i = 0; i < 40; i += 1) {
      await a.use(() => undefined);
      await h.advance(5_000);
    }
    const status = h.guard.status();
    expect(status.keepAlive).toMatchObject({ adaptive: true, prewarm: { minUses: 3, allowEviction: false }, lastPrewarm: null });
    expect(status.keepAlive.forecast).toMatchObject({ horizonMs: 60_000 });
    expect(status.keepAlive.forecast!.predictedBytes).toBeCloseTo(2 * GiB, -3);
    expect(status.keepAlive.forecast!.accuracy.evaluated).toBeGreaterThan(0);
    const read = () => JSON.stringify({ ...h.guard.status(), sampleAgeMs: undefined });
    const before = read();
    for (let i = 0; i < 1000; i += 1) h.guard.status();
    expect(read()).toBe(before);
    await h.guard.close();
  });
});

describe('keepAlive options', () => {
  const make = (options: object) => () => new VramGuard({ monitor: new FakeMonitor([{ totalBytes: 24 * GiB }]), clock: new FakeClock(), ...options });
  const rows: Array<[object, RegExp]> = [
    [{ keepAlive: { adaptiv: true } }, /^keepAlive\.adaptiv: unknown option \(did you mean keepAlive\.adaptive\?\)/],
    [{ keepAlive: { alpha: 0.5 } }, /^keepAlive\.alpha: expected a number in \[0\.1, 0\.3\], got 0\.5/],
    [{ keepAlive: { idleTtl: { min: '10m', max: '1m' } } }, /^keepAlive\.idleTtl\.max: \(60000 ms\) must be at least min \(600000 ms\)/],
    [{ keepAlive: { window: { bucket: '10s', span: '10s' } } }, /^keepAlive\.window\.span: .*2 to 10000 buckets/],
    [{ keepAlive: { prewarm: { minUses: 1 } } }, /^keepAlive\.prewarm\.minUses: expected an integer of at least 2, got 1/],
    [{ keepAlive: { forecast: { horizon: 'soon' } } }, /^keepAlive\.forecast\.horizon/],
    [{ keepAlive: { adaptive: 'yes' } }, /^keepAlive\.adaptive: expected true or false, got "yes"/],
    [{ keepAlive: { halfLife: '10ms' } }, /^keepAlive\.halfLife: must be at least 1 s, got 10 ms/],
  ];
  for (const [options, message] of rows) {
    it(`refuses ${JSON.stringify(options)}`, () => {
      expect(make(options)).toThrow(InvalidOptionError);
      expect(make(options)).toThrow(message);
    });
  }

  it('a session asks for adaptive without the guard keepAlive: refused, naming the session', () => {
    const guard = make({})();
    expect(() => guard.sessions.register('x', { bytes: GiB, dispose: () => undefined, keepAlive: { adaptive: true } })).toThrow(
      /^keepAlive \(session x\)\.adaptive: needs the guard's keepAlive option/,
    );
    void guard.close();
  });
});
