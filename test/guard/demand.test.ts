// Keep-alive demand model on known series: EWMA and least squares give the figures worked out by hand,
// the window counts what fell in it, predictions and TTLs follow from them, the forecast's error is
// measured against what happened.
import { describe, expect, it } from 'vitest';

import { InvalidOptionError } from '../../src/errors';
import { LoadForecast } from '../../src/guard/demand/forecast';
import { SessionDemand } from '../../src/guard/demand/session-demand';
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
  it('a use every 40 s: gap 40 s, deviation shrinking by 1 - alpha, next use 40 s after the last start', () => {
    const d = new SessionDemand({ alpha: 0.2 });
    for (let i = 0; i < 6; i += 1) {
      d.useStarted(T0 + i * 40_000);
      d.useEnded(T0 + i * 40_000 + 500);
    }
    const e = d.estimate(T0 + 5 * 40_000 + 1000);
    expect(e.gapMs).toBe(40_000);
    expect(e.gapDevMs).toBeCloseTo(20_000 * 0.8 ** 4, 6);
    expect(e.nextUseAt).toBe(T0 + 6 * 40_000);
    expect(e.nextUseInMs).toBe(39_000);
    expect(e.uses).toBe(6);
    expect(e.windowUses).toBe(6);
  });

  it('overdue: the next use recedes as far past due as it is', () => {
    const d = new SessionDemand();
    d.useStarted(T0);
    d.useStarted(T0 + 10_000);
    expect(d.estimate(T0 + 20_000).nextUseInMs).toBe(0);
    expect(d.estimate(T0 + 50_000).nextUseInMs).toBe(30_000);
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
  const steady = { hasHistory: true, gapMs: 40_000, gapDevMs: 0, nextUseInMs: 39_000, ratePerMinute: 1.5 };

  it('follows the predicted gap plus 4 deviations, scaled by pressure', () => {
    expect(pressureFactor(0.2)).toBe(2);
    expect(pressureFactor(0.75)).toBeCloseTo(1.25, 12);
    expect(pressureFactor(1.3)).toBe(0.5);
    const mid = adaptiveIdleTtl({ estimate: steady, bounds, fallbackMs: 300_000, usageRatio: 0.75 });
    expect(mid).toMatchObject({ ttlMs: 50_000, basis: 'prediction', baseMs: 40_000, clamped: null, ratePerMinute: 1.5, predictedNextUseInMs: 39_000 });
    const withDev = adaptiveIdleTtl({ estimate: { ...steady, gapDevMs: 5000 }, bounds, fallbackMs: null, usageRatio: 1 });
    expect(withDev.ttlMs).toBe((40_000 + 4 * 5000) * 0.5);
  });

  it('is clamped to its bounds and says so; without history it keeps the fixed TTL', () => {
    const short = adaptiveIdleTtl({ estimate: { ...steady, gapMs: 1000 }, bounds, fallbackMs: 300_000, usageRatio: 0 });
    expect(short).toMatchObject({ ttlMs: 10_000, clamped: 'min' });
    const long = adaptiveIdleTtl({ estimate: { ...steady, gapMs: 3_600_000 }, bounds, fallbackMs: 300_000, usageRatio: 0 });
    expect(long).toMatchObject({ ttlMs: 600_000, clamped: 'max' });
    const none = adaptiveIdleTtl({ estimate: { hasHistory: false, gapMs: null, gapDevMs: null, nextUseInMs: null, ratePerMinute: null }, bounds, fallbackMs: 300_000, usageRatio: 2 });
    expect(none).toMatchObject({ ttlMs: 300_000, basis: 'fallback', factor: 1 });
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
  it('bursts of uses 2 s apart with 10-minute pauses: the TTL covers the pause, not the 2 s gaps', () => {
    const d = new SessionDemand({ alpha: 0.2 });
    let t = T0;
    for (let burst = 0; burst < 4; burst += 1) {
      for (let i = 0; i < 10; i += 1) {
        d.useStarted(t);
        t += 2000;
      }
      t += 600_000;
    }
    const e = d.estimate(t);
    expect(e.gapMs!).toBeLessThan(150_000);
    // Three pauses seen, each 600 s plus the last 2 s step.
    expect(e.pauseMs).toBeCloseTo(602_000, 0);
    const ttl = adaptiveIdleTtl({ estimate: e, bounds: validateTtlBounds(30_000, 1_800_000), fallbackMs: 300_000, usageRatio: 0.75 });
    expect(ttl.baseMs).toBeCloseTo(602_000, 0);
    expect(ttl.ttlMs).toBeCloseTo(602_000 * 1.25, 0);
  });
});
