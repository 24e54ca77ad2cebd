// Keep-alive demand model on known series: EWMA and least squares give the figures worked out by hand,
// the window counts what fell in it, predictions and TTLs follow from them, the forecast's error is
// measured against what happened.
import { describe, expect, it } from 'vitest';

import { InvalidOptionError } from '../../src/errors';
import { LoadForecast } from '../../src/guard/demand/forecast';
import { GapHistogram } from '../../src/guard/demand/gaps';
import { SessionDemand } from '../../src/guard/demand/session-demand';
import { SessionKeepAlive } from '../../src/guard/demand/session-keepalive';
import { ewmaDecay, ewmaStep, fitLine, validateAlpha } from '../../src/guard/demand/stats';
import { adaptiveIdleTtl, pressureFactor, validateTtlBounds } from '../../src/guard/demand/ttl';
import { UseWindow } from '../../src/guard/demand/window';

const T0 = 1_700_000_000_000;

describe('statistics', () => {
  it('EWMA of 10, 20, 30 with alpha 0.2 is 10, 12, 15.6; decay is the same as zero samples', () => {
    let v: number | null = null;
    const out: number[] = [];
    for (const x of [10, 20, 30]) out.push((v = ewmaStep(v, x, 0.2)));
    expect(out[0]).toBe(10);
    expect(out[1]).toBeCloseTo(12, 12);
    expect(out[2]).toBeCloseTo(15.6, 12);
    let z = 15.6;
    for (let i = 0; i < 3; i += 1) z = ewmaStep(z, 0, 0.2);
    expect(ewmaDecay(15.6, 3, 0.2)).toBeCloseTo(z, 12);
  });

  it('alpha outside 0.1–0.3 is refused with its value', () => {
    expect(validateAlpha(0.1)).toBe(0.1);
    expect(() => validateAlpha(0.5, 'keepAlive.alpha')).toThrow(/keepAlive\.alpha: expected a number in \[0\.1, 0\.3\], got 0\.5/);
    expect(() => validateAlpha('0.2')).toThrow(InvalidOptionError);
  });

  it('least squares recovers y = 3x + 5 at epoch-sized x, and y = -2x + 1 through noise-free points', () => {
    const xs = [0, 1, 2, 3, 4].map((i) => T0 + i * 1000);
    const fit = fitLine(xs, xs.map((x) => 3 * x + 5))!;
    expect(fit.slope).toBeCloseTo(3, 9);
    expect(fit.intercept + fit.slope * xs[2]!).toBeCloseTo(3 * xs[2]! + 5, 0);
    const line = fitLine([0, 1, 2], [1, -1, -3])!;
    expect(line.slope).toBeCloseTo(-2, 12);
    expect(line.intercept).toBeCloseTo(1, 12);
    expect(fitLine([1], [1])).toBeNull();
    expect(fitLine([2, 2, 2], [1, 2, 3])).toBeNull();
  });
});

describe('UseWindow', () => {
  it('counts per bucket and forgets what slid out', () => {
    const w = new UseWindow(1000, 4);
    w.add(T0);
    w.add(T0 + 10);
    w.add(T0 + 1500);
    expect(w.total(T0 + 1500)).toBe(3);
    expect(w.series(T0 + 1999).slice(-2)).toEqual([2, 1]);
    // Four buckets later the first bucket is out of the window.
    w.add(T0 + 4200);
    expect(w.total(T0 + 4200)).toBe(2);
    expect(w.total(T0 + 100_000)).toBe(0);
    expect(w.storedBuckets).toBe(4);
    expect(w.ratePerSecond(T0 + 4200)).toBeCloseTo(2 / 4, 12);
  });

  it('refuses a bad geometry', () => {
    expect(() => new UseWindow(0, 10)).toThrow(/bucketMs: expected more than 0 ms, got 0/);
    expect(() => new UseWindow(1000, 1.5)).toThrow(/buckets: expected an integer in \[2, 10000\], got 1\.5/);
  });
});

describe('SessionDemand', () => {
  it('a use every 40 s: gap 40 s, next use 39 s after a second of idleness (the pool agreeing)', () => {
    const pool = new GapHistogram();
    const d = new SessionDemand({ alpha: 0.2, pool });
    for (let i = 0; i < 6; i += 1) {
      d.useStarted(T0 + i * 40_000);
      d.useEnded(T0 + i * 40_000 + 500);
    }
    const e = d.estimate(T0 + 5 * 40_000 + 1000);
    expect(e.gapMs).toBe(40_000);
    // Five gaps, the oldest decayed for 160 s of a 1-h half-life.
    expect(e.gapsRecorded).toBeGreaterThan(4.8);
    expect(e.gapsRecorded).toBeLessThanOrEqual(5);
    expect(e.nextUseInMs).toBeCloseTo(39_000, 6);
    expect(e.nextUseAt).toBeCloseTo(T0 + 6 * 40_000, 6);
    expect(e.uses).toBe(6);
    expect(e.windowUses).toBe(6);
  });

  it('idle longer than any gap on record (and the pool has none that long): as long again as it has been idle', () => {
    const d = new SessionDemand();
    d.useStarted(T0);
    d.useStarted(T0 + 10_000);
    expect(d.estimate(T0 + 30_000).nextUseInMs).toBe(20_000);
    expect(d.estimate(T0 + 60_000).nextUseInMs).toBe(50_000);
  });

  it('one use per 10 s bucket: the rate EWMA is 6 per minute; empty buckets decay it', () => {
    const d = new SessionDemand({ alpha: 0.2, bucketMs: 10_000 });
    for (let i = 0; i < 12; i += 1) d.useStarted(T0 + i * 10_000 + 1);
    const at = T0 + 12 * 10_000 + 1;
    expect(d.estimate(at).ratePerMinute).toBeCloseTo(6, 9);
    // Three more buckets with no use: 6 * 0.8^3.
    expect(d.estimate(at + 30_000).ratePerMinute).toBeCloseTo(6 * 0.8 ** 3, 9);
    // Queries change nothing.
    expect(d.estimate(at).ratePerMinute).toBeCloseTo(6, 9);
  });

  it('no history before two uses; the last load time is kept', () => {
    const d = new SessionDemand();
    expect(d.estimate(T0)).toMatchObject({ hasHistory: false, nextUseInMs: null, ratePerMinute: null, lastLoadMs: null });
    d.useStarted(T0);
    d.loadMeasured(2500);
    d.loadMeasured(Number.NaN);
    expect(d.estimate(T0)).toMatchObject({ hasHistory: false, uses: 1, lastLoadMs: 2500 });
  });
});

describe('adaptiveIdleTtl', () => {
  const bounds = validateTtlBounds(10_000, 600_000);
  const steady = { hasHistory: true, nextUseInMs: 39_000, ratePerMinute: 1.5 };
  // A stand-in for the histogram: the predicted wait exceeds the horizon after horizon / 4 of idleness.
  const quarter = (h: number) => h / 4;

  it('keeps the session until its predicted wait exceeds the horizon: max, scaled by pressure', () => {
    expect(pressureFactor(0.2)).toBe(2);
    expect(pressureFactor(0.75)).toBeCloseTo(1.25, 12);
    expect(pressureFactor(1.3)).toBe(0.5);
    const mid = adaptiveIdleTtl({ estimate: steady, idleUntilWaitExceeds: quarter, bounds, fallbackMs: 300_000, usageRatio: 0.75 });
    expect(mid).toMatchObject({ ttlMs: 187_500, basis: 'prediction', horizonMs: 750_000, baseMs: 187_500, clamped: null, ratePerMinute: 1.5, predictedNextUseInMs: 39_000 });
    const pressed = adaptiveIdleTtl({ estimate: steady, idleUntilWaitExceeds: quarter, bounds, fallbackMs: null, usageRatio: 1 });
    expect(pressed).toMatchObject({ ttlMs: 75_000, horizonMs: 300_000, factor: 0.5 });
  });

  it('is clamped to its bounds and says so; without history it keeps the fixed TTL', () => {
    const short = adaptiveIdleTtl({ estimate: steady, idleUntilWaitExceeds: () => 1000, bounds, fallbackMs: 300_000, usageRatio: 0 });
    expect(short).toMatchObject({ ttlMs: 10_000, clamped: 'min' });
    const long = adaptiveIdleTtl({ estimate: steady, idleUntilWaitExceeds: () => 3_600_000, bounds, fallbackMs: 300_000, usageRatio: 0 });
    expect(long).toMatchObject({ ttlMs: 600_000, clamped: 'max' });
    const none = adaptiveIdleTtl({ estimate: { hasHistory: false, nextUseInMs: null, ratePerMinute: null }, idleUntilWaitExceeds: () => null, bounds, fallbackMs: 300_000, usageRatio: 2 });
    expect(none).toMatchObject({ ttlMs: 300_000, basis: 'fallback', factor: 1, horizonMs: null });
    const noPredictor = adaptiveIdleTtl({ estimate: steady, bounds, fallbackMs: 300_000, usageRatio: 0 });
    expect(noPredictor).toMatchObject({ ttlMs: 300_000, basis: 'fallback' });
  });

  it('refuses bounds that are not min <= max', () => {
    expect(() => validateTtlBounds(0, 10)).toThrow(/keepAlive\.idleTtl\.min: must be more than 0 ms, got 0/);
    expect(() => validateTtlBounds(20_000, 10_000)).toThrow(/keepAlive\.idleTtl\.max: \(10000 ms\) must be at least min \(20000 ms\)/);
  });
});

describe('LoadForecast', () => {
  it('usage growing 1 MB/s: slope 1 MB/s, forecasts exact, measured error about 0', () => {
    const f = new LoadForecast({ bucketMs: 10_000, windowMs: 600_000, horizonMs: 60_000 });
    for (let s = 0; s <= 900; s += 1) f.add(T0 + s * 1000, 1e9 + s * 1e6);
    const view = f.forecast(T0 + 900_000)!;
    expect(view.slopeBytesPerSecond).toBeCloseTo(1e6, 0);
    expect(view.predictedBytes).toBeCloseTo(1e9 + 960 * 1e6, -4);
    const acc = f.accuracy();
    expect(acc.evaluated).toBeGreaterThan(70);
    expect(Math.abs(acc.meanAbsErrorBytes!)).toBeLessThan(1e6); // within one second's growth
    expect(f.storedBuckets).toBeLessThanOrEqual(60);
    expect(f.pendingForecasts).toBeLessThanOrEqual(7);
  });

  it('flat usage that steps up by 1 GB: the forecasts made before the step miss by about 1 GB', () => {
    const f = new LoadForecast({ bucketMs: 10_000, windowMs: 300_000, horizonMs: 30_000 });
    for (let s = 0; s < 300; s += 1) f.add(T0 + s * 1000, 4e9);
    expect(f.accuracy().meanAbsErrorBytes).toBe(0);
    for (let s = 300; s < 310; s += 1) f.add(T0 + s * 1000, 5e9);
    const acc = f.accuracy();
    expect(acc.lastErrorBytes).toBeCloseTo(-1e9, -3);
    expect(acc.meanErrorBytes!).toBeLessThan(0);
    expect(f.forecast(T0 + 1000)).toBeNull(); // nothing in that window
  });

  it('refuses a window shorter than three buckets', () => {
    expect(() => new LoadForecast({ bucketMs: 10_000, windowMs: 20_000 })).toThrow(/forecast\.windowMs: \(20000 ms\) must hold at least 3 buckets of 10000 ms/);
  });
});

describe('pauses', () => {
  it('bursts of uses 2 s apart with 10-minute pauses: seconds away mid-burst, the pause once past it; the TTL covers the pause', () => {
    const pool = new GapHistogram();
    const k = new SessionKeepAlive(validateTtlBounds(30_000, 1_800_000), { alpha: 0.2, bucketMs: 10_000, buckets: 60, pool }, 300_000);
    const d = k.demand;
    let t = T0;
    for (let burst = 0; burst < 4; burst += 1) {
      for (let i = 0; i < 10; i += 1) {
        d.useStarted(t);
        d.useEnded(t + 100);
        t += 2000;
      }
      t += 600_000;
    }
    // The last burst's last use started at t - 602 s; 1 s into what may be a gap of 2 s or a pause.
    const last = t - 602_000;
    const midBurst = d.estimate(last + 1000).nextUseInMs!;
    const pastBurst = d.estimate(last + 30_000).nextUseInMs!;
    // 36 gaps of 2 s, 3 pauses of 602 s: a second in, 1 s for most, ~601 s for 3 in 39.
    expect(midBurst).toBeGreaterThan(10_000);
    expect(midBurst).toBeLessThan(60_000);
    // Past the 2-s gaps only the pauses are left: 602 - 30 s, within the bucket's spread.
    expect(pastBurst).toBeGreaterThan(500_000);
    expect(pastBurst).toBeLessThan(602_000);
    const ttl = k.decide(last + 100, 0.75);
    expect(ttl.basis).toBe('prediction');
    expect(ttl.ttlMs).toBeGreaterThan(602_000);
  });
});
