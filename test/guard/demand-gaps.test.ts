// The gap histogram and its mean residual life (the predictor of keep-alive): never negative, the mean
// gap at every age for a memoryless history, the pause once a burst's gaps are passed, the pooled
// prior where a session's own gaps say little, old gaps fading, bounded memory, and a first crossing
// of the horizon that never comes later for a shorter horizon (so a TTL never grows under pressure).
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

// The benchmark traces' seeded PRNG (a plain ES module).
import { prng } from '../../bench/lib/traces.mjs';
import { GapHistogram } from '../../src/guard/demand/gaps';
import { SessionKeepAlive } from '../../src/guard/demand/session-keepalive';
import { validateTtlBounds } from '../../src/guard/demand/ttl';

const T0 = 1_700_000_000_000;
const HOUR = 3_600_000;

/** Exponential samples from the benchmark's seeded PRNG (mulberry32). */
function exponential(seed: number, mean: number): () => number {
  const rand = prng(seed);
  return () => -Math.log(1 - rand()) * mean;
}

describe('GapHistogram', () => {
  it('a memoryless history (Poisson uses, mean gap 60 s): the residual is the mean gap at every age, within 8 %', () => {
    const g = new GapHistogram(1000 * HOUR);
    const next = exponential(7, 60_000);
    let t = T0;
    for (let i = 0; i < 4000; i += 1) {
      const gap = next();
      t += gap;
      g.add(gap, t);
    }
    expect(g.meanMs!).toBeGreaterThan(55_000);
    expect(g.meanMs!).toBeLessThan(65_000);
    for (const age of [0, 5_000, 30_000, 60_000, 120_000]) {
      const r = g.residualMs(age)!;
      expect(Math.abs(r - g.meanMs!) / g.meanMs!).toBeLessThan(0.08);
    }
  });

  it('no gap on record: null (least-recently-used order stands); none longer than the age: the age itself', () => {
    const g = new GapHistogram();
    expect(g.residualMs(10_000)).toBeNull();
    expect(g.ageWhenWaitExceeds(60_000, 0, 600_000)).toBeNull();
    g.add(5_000, T0);
    expect(g.residualMs(60_000)).toBe(60_000);
    // Continuous: no fall to 0 just below the longest gap.
    const below = g.residualMs(5_600)!;
    const above = g.residualMs(5_700)!;
    expect(below).toBeGreaterThan(5_000);
    expect(Math.abs(above - below)).toBeLessThan(200);
  });

  it('leans on the pool where its own gaps say nothing: a session seen only in a burst waits the pool\'s pause', () => {
    const pool = new GapHistogram();
    const own = new GapHistogram();
    let t = T0;
    for (let i = 0; i < 20; i += 1) {
      t += 3_000;
      own.add(3_000, t);
      pool.add(3_000, t);
    }
    // Other sessions' pauses of 10 minutes.
    for (let i = 0; i < 5; i += 1) pool.add(600_000, t);
    expect(own.residualMs(60_000, pool)!).toBeCloseTo(540_000, -4);
    // Without a pool, the scale-free guess: as long again.
    expect(own.residualMs(60_000)).toBe(60_000);
    // Its own pauses outweigh the pool's once it has some: two of 3 minutes against the pool's 10.
    own.add(180_000, t);
    own.add(180_000, t);
    const r = own.residualMs(60_000, pool)!;
    expect(r).toBeGreaterThan(180_000);
    expect(r).toBeLessThan(540_000);
  });

  it('old gaps fade with the half-life: gaps of 10 s, then ten hours later gaps of 100 s', () => {
    const g = new GapHistogram(HOUR);
    for (let i = 0; i < 100; i += 1) g.add(10_000, T0 + i * 10_000);
    for (let i = 0; i < 100; i += 1) g.add(100_000, T0 + 10 * HOUR + i * 100_000);
    expect(g.meanMs!).toBeGreaterThan(99_000);
    expect(g.residualMs(0)!).toBeGreaterThan(90_000);
    // A query later decays the history against the prior: after 30 half-lives, only the age is left.
    expect(g.residualMs(200_000, null, T0 + 40 * HOUR)!).toBeCloseTo(200_000, -3);
    expect(() => new GapHistogram(0)).toThrow(/keepAlive\.halfLife: expected more than 0 ms, got 0/);
  });

  it('property: the residual is finite and never negative, memory is fixed, whatever the gaps, ages and pool', () => {
    const gap = fc.oneof(fc.double({ min: -1e3, max: 1e10, noNaN: false }), fc.constant(Infinity), fc.integer({ min: 0, max: 10_000_000 }));
    fc.assert(
      fc.property(fc.array(gap, { maxLength: 200 }), fc.array(gap, { maxLength: 50 }), fc.double({ min: -1e3, max: 1e10, noNaN: true }), fc.boolean(), (gaps, pooled, age, withPool) => {
        const g = new GapHistogram();
        const pool = new GapHistogram();
        gaps.forEach((x, i) => g.add(x, T0 + i * 1000));
        pooled.forEach((x, i) => pool.add(x, T0 + i * 1000));
        expect(g.storedBuckets).toBe(40);
        const r = g.residualMs(age, withPool ? pool : null, T0 + gaps.length * 1000);
        if (g.gaps === 0) expect(r).toBeNull();
        else {
          expect(Number.isFinite(r)).toBe(true);
          expect(r!).toBeGreaterThanOrEqual(0);
        }
      }),
      { numRuns: 800 },
    );
  });

  it('property: a shorter horizon is never crossed later, so the TTL never grows as pressure rises', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 0, max: 3 * HOUR }), { minLength: 1, maxLength: 80 }),
        fc.integer({ min: 1, max: HOUR }),
        fc.integer({ min: 1, max: HOUR }),
        fc.integer({ min: 0, max: 600_000 }),
        (gaps, h1, h2, from) => {
          const g = new GapHistogram();
          gaps.forEach((x, i) => g.add(x, T0 + i));
          const [short, long] = h1 <= h2 ? [h1, h2] : [h2, h1];
          const a = g.ageWhenWaitExceeds(short, from, from + 2 * HOUR)!;
          const b = g.ageWhenWaitExceeds(long, from, from + 2 * HOUR)!;
          expect(a).toBeLessThanOrEqual(b);
          expect(a).toBeGreaterThanOrEqual(from);
        },
      ),
      { numRuns: 400 },
    );
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 500, max: 1_800_000 }), { minLength: 2, maxLength: 60 }),
        fc.double({ min: 0, max: 2, noNaN: true }),
        fc.double({ min: 0, max: 2, noNaN: true }),
        (gaps, u1, u2) => {
          const k = new SessionKeepAlive(validateTtlBounds(60_000, 1_800_000), { alpha: 0.2, bucketMs: 10_000, buckets: 60 }, null);
          let t = T0;
          for (const x of gaps) {
            k.demand.useStarted(t);
            k.demand.useEnded(t + 200);
            t += x;
          }
          const now = t - gaps.at(-1)! + 200;
          const [calm, pressed] = u1 <= u2 ? [u1, u2] : [u2, u1];
          const relaxedTtl = k.decide(now, calm).ttlMs;
          const pressedTtl = k.decide(now, pressed).ttlMs;
          expect(pressedTtl).toBeLessThanOrEqual(relaxedTtl);
          expect(pressedTtl).toBeGreaterThanOrEqual(60_000);
          expect(relaxedTtl).toBeLessThanOrEqual(1_800_000);
        },
      ),
      { numRuns: 300 },
    );
  });
});
