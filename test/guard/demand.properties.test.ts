// Property-based checks of the keep-alive pieces: the adaptive TTL stays within its bounds whatever the
// estimate and the pressure; the scorer never picks a busy, pinned or unloaded session and keeps the
// priority order; pre-warming never evicts a session predicted to be used sooner than the one it loads;
// window and forecast memory stay bounded; EWMA and regression give the known answers on known series.
import fc from 'fast-check';
import { expect, it } from 'vitest';

import { LoadForecast } from '../../src/guard/demand/forecast';
import { planPrewarm } from '../../src/guard/demand/prewarm';
import { GapHistogram } from '../../src/guard/demand/gaps';
import { SessionDemand } from '../../src/guard/demand/session-demand';
import { ewmaStep, fitLine } from '../../src/guard/demand/stats';
import { adaptiveIdleTtl } from '../../src/guard/demand/ttl';
import { evictable, pickVictim, rankVictims, type VictimCandidate } from '../../src/guard/demand/victims';
import { UseWindow } from '../../src/guard/demand/window';

const NOW = 50_000_000;
const anyNumber = fc.oneof(fc.double({ noNaN: false }), fc.constant(Infinity), fc.constant(-Infinity), fc.integer({ min: 0, max: 10_000_000 }));
const maybe = <T>(a: fc.Arbitrary<T>) => fc.option(a, { nil: null });

const candidate: fc.Arbitrary<VictimCandidate> = fc.record({
  id: fc.string({ minLength: 1, maxLength: 4 }),
  bytes: fc.integer({ min: 1, max: 2 ** 36 }),
  priority: fc.integer({ min: -2, max: 2 }),
  pinned: fc.boolean(),
  busy: fc.nat(2),
  state: fc.constantFrom('loaded', 'loaded', 'evicting', 'evicted', 'loading'),
  lastUsedAt: fc.integer({ min: NOW - 10_000_000, max: NOW }),
  nextUseInMs: maybe(fc.integer({ min: 0, max: 10_000_000 })),
  reloadMs: maybe(fc.integer({ min: 0, max: 120_000 })),
});
const uniqueCandidates = fc.uniqueArray(candidate, { selector: (c) => c.id, maxLength: 12 });

it('adaptive TTL is never below min nor above max', () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 3_600_000 }),
      fc.integer({ min: 0, max: 3_600_000 }),
      fc.record(
        { hasHistory: fc.boolean(), nextUseInMs: maybe(anyNumber), ratePerMinute: maybe(anyNumber), historyMs: fc.double({ min: 0, max: 1e7, noNaN: true }) },
        { requiredKeys: ['hasHistory', 'nextUseInMs', 'ratePerMinute'] },
      ),
      maybe(anyNumber),
      maybe(anyNumber),
      anyNumber,
      fc.record({ idleFactor: fc.double({ min: 0, max: 10, noNaN: true }), pressureFactor: fc.double({ min: 0, max: 10, noNaN: true }) }),
      (min, extra, estimate, idle, fallbackMs, usageRatio, policy) => {
        const bounds = { minMs: min, maxMs: min + extra };
        const d = adaptiveIdleTtl({ estimate, idleUntilWaitExceeds: () => idle, bounds, fallbackMs, usageRatio, policy });
        expect(d.ttlMs).toBeGreaterThanOrEqual(bounds.minMs);
        expect(d.ttlMs).toBeLessThanOrEqual(bounds.maxMs);
      },
    ),
    { numRuns: 2000 },
  );
});

it('the scorer never picks busy, pinned or unloaded sessions, and keeps priority order', () => {
  fc.assert(
    fc.property(uniqueCandidates, (candidates) => {
      const ranked = rankVictims(candidates, NOW);
      expect(ranked.length).toBe(candidates.filter(evictable).length);
      for (const r of ranked) {
        expect(r.candidate.pinned).toBe(false);
        expect(r.candidate.busy).toBe(0);
        expect(r.candidate.state).toBe('loaded');
        expect(Number.isFinite(r.score)).toBe(true);
      }
      for (let i = 1; i < ranked.length; i += 1) expect(ranked[i - 1]!.candidate.priority).toBeLessThanOrEqual(ranked[i]!.candidate.priority);
      expect(pickVictim(candidates, NOW)?.id).toBe(ranked[0]?.candidate.id);
    }),
    { numRuns: 1000 },
  );
});

it('within a priority, with equal size and reload cost, the furthest predicted use goes first', () => {
  fc.assert(
    fc.property(fc.uniqueArray(fc.integer({ min: 0, max: 10_000_000 }), { minLength: 2, maxLength: 8 }), (nexts) => {
      const cs = nexts.map((n, i) => ({ id: `s${i}`, bytes: 1, priority: 0, pinned: false, busy: 0, lastUsedAt: NOW, nextUseInMs: n, reloadMs: 100 }));
      expect(pickVictim(cs, NOW)?.nextUseInMs).toBe(Math.max(...nexts));
    }),
  );
});

it('pre-warming never evicts a session with a nearer predicted use, nor pinned, busy or higher-priority ones, and fits', () => {
  const prewarm = fc.record({
    id: fc.string({ minLength: 1, maxLength: 4 }).map((id) => `p-${id}`),
    bytes: fc.integer({ min: 1, max: 2 ** 36 }),
    priority: fc.integer({ min: -2, max: 2 }),
    uses: fc.nat(10),
    nextUseInMs: maybe(fc.integer({ min: 0, max: 200_000 })),
    reloadMs: maybe(fc.integer({ min: 0, max: 120_000 })),
  });
  fc.assert(
    fc.property(
      fc.uniqueArray(prewarm, { selector: (c) => c.id, maxLength: 6 }),
      uniqueCandidates,
      fc.integer({ min: -(2 ** 34), max: 2 ** 37 }),
      fc.integer({ min: 1, max: 4 }),
      fc.boolean(),
      (candidates, residents, roomBytes, maxLoads, allowEviction) => {
        const plan = planPrewarm({ now: NOW, roomBytes, candidates, residents, leadMs: 1000, maxLoads, allowEviction });
        expect(plan.loads.length).toBeLessThanOrEqual(maxLoads);
        const byId = new Map(residents.map((r) => [r.id, r]));
        const evicted = new Set<string>();
        let room = Math.max(0, roomBytes);
        for (const load of plan.loads) {
          const c = candidates.find((x) => x.id === load.id)!;
          expect(load.nextUseInMs).toBeLessThanOrEqual(load.reloadMs + 1000);
          expect(c.uses).toBeGreaterThanOrEqual(3);
          if (!allowEviction) expect(load.evict).toEqual([]);
          for (const id of load.evict) {
            const v = byId.get(id)!;
            expect(evicted.has(id)).toBe(false);
            evicted.add(id);
            expect(evictable(v)).toBe(true);
            expect(v.nextUseInMs).not.toBeNull();
            expect(v.nextUseInMs!).toBeGreaterThan(load.nextUseInMs);
            expect(v.priority).toBeLessThanOrEqual(c.priority);
            room += v.bytes;
          }
          expect(load.bytes).toBeLessThanOrEqual(room);
          room -= load.bytes;
        }
      },
    ),
    { numRuns: 1500 },
  );
});

it('the use window holds a fixed number of buckets and counts exactly what fell in it', () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 5000 }),
      fc.integer({ min: 2, max: 50 }),
      fc.array(fc.integer({ min: 0, max: 20_000 }), { maxLength: 300 }),
      fc.integer({ min: 0, max: 100_000 }),
      (bucketMs, buckets, steps, after) => {
        const w = new UseWindow(bucketMs, buckets);
        const times: number[] = [];
        let t = NOW;
        for (const step of steps) {
          t += step;
          times.push(t);
          w.add(t);
        }
        const now = t + after;
        const nowBucket = Math.floor(now / bucketMs);
        const expected = times.filter((x) => Math.floor(x / bucketMs) > nowBucket - buckets).length;
        expect(w.total(now)).toBe(expected);
        expect(w.storedBuckets).toBe(buckets);
        expect(w.series(now)).toHaveLength(buckets);
      },
    ),
    { numRuns: 500 },
  );
});

it('the forecast keeps bounded memory and recovers any straight line exactly', () => {
  fc.assert(
    fc.property(
      fc.integer({ min: -1_000_000, max: 1_000_000 }),
      fc.integer({ min: 0, max: 2 ** 40 }),
      fc.integer({ min: 100, max: 2000 }),
      fc.integer({ min: 60, max: 800 }),
      (slopePerS, base, stepMs, n) => {
        const f = new LoadForecast({ bucketMs: 10_000, windowMs: 120_000, horizonMs: 30_000 });
        const bytesAt = (t: number) => base + 2 ** 41 + (slopePerS * (t - NOW)) / 1000;
        for (let i = 0; i < n; i += 1) {
          const t = NOW + i * stepMs;
          f.add(t, bytesAt(t));
          expect(f.storedBuckets).toBeLessThanOrEqual(12);
          expect(f.pendingForecasts).toBeLessThanOrEqual(4);
        }
        const now = NOW + (n - 1) * stepMs;
        const view = f.forecast(now);
        if (view) {
          expect(view.slopeBytesPerSecond).toBeCloseTo(slopePerS, 0);
          // Within a few parts in 10^9 of terabyte-sized figures (double rounding).
          expect(Math.abs(view.predictedBytes - bytesAt(now + 30_000))).toBeLessThan(1e4);
        }
        const acc = f.accuracy();
        if (acc.meanAbsErrorBytes !== null) expect(acc.meanAbsErrorBytes).toBeLessThan(1e4);
      },
    ),
    { numRuns: 60 },
  );
});

it('EWMA stays within its samples, is constant on a constant series, and a periodic use gives its period', () => {
  fc.assert(
    fc.property(fc.array(fc.double({ min: -1e9, max: 1e9, noNaN: true }), { minLength: 1, maxLength: 50 }), fc.double({ min: 0.1, max: 0.3, noNaN: true }), (xs, alpha) => {
      let v: number | null = null;
      for (const x of xs) v = ewmaStep(v, x, alpha);
      expect(v!).toBeGreaterThanOrEqual(Math.min(...xs) - 1e-6);
      expect(v!).toBeLessThanOrEqual(Math.max(...xs) + 1e-6);
      let c: number | null = null;
      for (let i = 0; i < xs.length; i += 1) c = ewmaStep(c, xs[0]!, alpha);
      expect(c).toBeCloseTo(xs[0]!, 3);
    }),
  );
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 3_600_000 }), fc.integer({ min: 2, max: 40 }), (period, uses) => {
      // The pool holds the same gaps (the only adaptive session): the prior agrees with the history.
      const d = new SessionDemand({ pool: new GapHistogram() });
      for (let i = 0; i < uses; i += 1) d.useStarted(NOW + i * period);
      const e = d.estimate(NOW + (uses - 1) * period);
      expect(e.gapMs).toBe(period);
      expect(e.nextUseInMs!).toBeCloseTo(period, 6);
      const line = fitLine([0, period, 2 * period], [7, 7 + period, 7 + 2 * period])!;
      expect(line.slope).toBeCloseTo(1, 9);
    }),
  );
});
