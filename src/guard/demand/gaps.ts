// A session's inter-use gaps as a bounded, decaying histogram, and from it the mean residual life:
// given that the session has been idle for `age` since its last use began, how long until the next
// use, on average: E[gap - age | gap > age]. Inside a burst (age of seconds) that is short; once the age
// is past the gaps within a burst, it is the session's usual pause, whatever its recency. For a
// memoryless (Poisson) history it is the mean gap at every age.
//
// Buckets are log-spaced (ratio sqrt 2 from 1 s, the last open-ended past ~6 days), each holding a
// weight and the weighted sum of its gaps, so the mean within a bucket is exact and only the bucket an
// age falls in is interpolated (its gaps taken as spread evenly over it). Weights halve every
// `halfLifeMs` of the clock, so old behaviour fades; memory is the fixed bucket count whatever the
// number of uses. Pure arithmetic: the clock's times come in as arguments.
import { InvalidOptionError } from '../../errors';

/** Bucket edges, ms: 0, then 1 s × 2^(k/2) for k = 0 .. EDGE_COUNT - 2; the last bucket has no upper edge. */
const EDGE_COUNT = 40;
const EDGES: readonly number[] = [0, ...Array.from({ length: EDGE_COUNT - 1 }, (_, k) => 1000 * 2 ** (k / 2))];

/**
 * Weight of the prior, in gaps. Where a session's own recorded gaps longer than its idle time weigh
 * little, the residual leans on the prior: the gaps of every adaptive session of the guard (the pool:
 * the same clients, the same kind of traffic), conditioned on the same idle time, scaled to this
 * weight; where the pool has nothing that long either, one point at the idle time itself (with no gap
 * that long on record, the scale-free guess is "as long again": the median remaining life when only
 * the age is known, which ranks such sessions by idle time, as least-recently-used order does). A
 * mean estimated from n exponential gaps is off by 1/sqrt(n), 50 % at 4: a session's own history
 * outweighs the pool once it has about that many gaps longer than its idle time. The prior also keeps
 * the residual from falling to 0 as the idle time nears the longest gap seen (the empirical
 * residual's end effect) and makes it continuous in the idle time.
 */
const PRIOR_WEIGHT = 4;

/** Weights below this (after decay) are forgotten: the bucket is empty again. */
const FORGOTTEN = 1e-9;

export const DEFAULT_HALF_LIFE_MS = 3_600_000;

/** A share of the residual distribution: its weight (in gaps) and the wait left for it, ms. */
export interface Mass {
  weight: number;
  waitMs: number;
}

export class GapHistogram {
  private readonly weight = new Float64Array(EDGE_COUNT);
  private readonly sum = new Float64Array(EDGE_COUNT);
  private decayedAt: number | null = null;

  constructor(readonly halfLifeMs: number = DEFAULT_HALF_LIFE_MS) {
    if (!Number.isFinite(halfLifeMs) || halfLifeMs <= 0) {
      throw new InvalidOptionError('keepAlive.halfLife', `expected more than 0 ms, got ${String(halfLifeMs)}`);
    }
  }

  /** Buckets held: always the same, whatever was added. */
  get storedBuckets(): number {
    return this.weight.length;
  }

  /** The decayed number of gaps recorded (as of the last add). */
  get gaps(): number {
    let w = 0;
    for (const x of this.weight) w += x;
    return w;
  }

  /** Weighted mean of the recorded gaps; null before the first. */
  get meanMs(): number | null {
    let w = 0;
    let s = 0;
    for (let i = 0; i < EDGE_COUNT; i += 1) {
      w += this.weight[i]!;
      s += this.sum[i]!;
    }
    return w > 0 ? s / w : null;
  }

  /** Records one gap that ended at time t (times must not run backwards; a negative gap counts as 0). */
  add(gapMs: number, t: number): void {
    if (!Number.isFinite(gapMs) || !Number.isFinite(t)) return;
    const gap = Math.max(0, gapMs);
    if (this.decayedAt !== null && t > this.decayedAt) {
      const keep = 2 ** (-(t - this.decayedAt) / this.halfLifeMs);
      for (let i = 0; i < EDGE_COUNT; i += 1) {
        const w = this.weight[i]! * keep;
        this.weight[i] = w < FORGOTTEN ? 0 : w;
        this.sum[i] = w < FORGOTTEN ? 0 : this.sum[i]! * keep;
      }
    }
    if (this.decayedAt === null || t > this.decayedAt) this.decayedAt = t;
    const b = bucketOf(gap);
    this.weight[b]! += 1;
    this.sum[b]! += gap;
  }

  /**
   * This histogram's residual waits at `age` as point masses: for every bucket with gaps longer than
   * the age, its weight above the age and the mean wait left for those (the bucket the age falls in
   * taken as spread evenly: exact at its lower edge, 0 at its upper, so continuous in the age). Weights
   * decayed to `now` when given. Null with no gap recorded; empty when none is longer than the age.
   */
  private own(age: number, now: number | undefined): Mass[] | null {
    const keep = now !== undefined && this.decayedAt !== null && now > this.decayedAt ? 2 ** (-(now - this.decayedAt) / this.halfLifeMs) : 1;
    const out: Mass[] = [];
    let total = 0;
    for (let i = 0; i < EDGE_COUNT; i += 1) {
      const wi = this.weight[i]! * keep;
      if (!(wi > 0)) continue;
      total += wi;
      const lo = EDGES[i]!;
      const hi = i + 1 < EDGE_COUNT ? EDGES[i + 1]! : Infinity;
      if (hi <= age) continue;
      const mean = this.sum[i]! / this.weight[i]!;
      if (lo >= age) out.push({ weight: wi, waitMs: mean - age });
      else if (hi === Infinity) {
        // The open-ended last bucket: counted with its mean while that is past the age.
        if (mean > age) out.push({ weight: wi, waitMs: mean - age });
      } else {
        const share = (hi - age) / (hi - lo);
        out.push({ weight: wi * share, waitMs: share * (mean - lo) });
      }
    }
    return total > 0 ? out : null;
  }

  /**
   * The residual waits at `ageMs` with the prior (PRIOR_WEIGHT): the pool's own masses at the same age
   * scaled to it, or one mass at the age itself when the pool has none. Null with no gap recorded here.
   */
  residuals(ageMs: number, prior?: GapHistogram | null, now?: number): Mass[] | null {
    const age = Math.max(0, Number.isFinite(ageMs) ? ageMs : 0);
    const out = this.own(age, now);
    if (out === null) return null;
    const pooled = prior && prior !== this ? (prior.own(age, now) ?? []) : [];
    const pooledWeight = pooled.reduce((a, x) => a + x.weight, 0);
    if (pooledWeight > 0) for (const x of pooled) out.push({ weight: (PRIOR_WEIGHT * x.weight) / pooledWeight, waitMs: x.waitMs });
    else out.push({ weight: PRIOR_WEIGHT, waitMs: age });
    return out;
  }

  /**
   * Mean residual life at `ageMs`: the expected ms from now to the next use, given none for ageMs since
   * the last use began, from this history, the prior where it says little, weights decayed to `now`
   * (absent: as of the last gap). Never negative; null with no gap recorded (no history: the caller
   * falls back to least-recently-used order).
   */
  residualMs(ageMs: number, prior?: GapHistogram | null, now?: number): number | null {
    const r = this.residuals(ageMs, prior, now);
    if (r === null) return null;
    let w = 0;
    let s = 0;
    for (const x of r) {
      w += x.weight;
      s += x.weight * x.waitMs;
    }
    return Math.max(0, s / w);
  }

  /**
   * The first age at or after `fromAgeMs` at which the residual reaches `horizonMs` (the wait for the
   * next use becomes longer than the horizon), searched up to `maxAgeMs`; maxAgeMs when it never does
   * before. Null with no gap recorded.
   */
  ageWhenWaitExceeds(horizonMs: number, fromAgeMs: number, maxAgeMs: number, prior?: GapHistogram | null, now?: number): number | null {
    const from = Math.max(0, fromAgeMs);
    const first = this.residualMs(from, prior, now);
    if (first === null) return null;
    if (first >= horizonMs || maxAgeMs <= from) return from;
    // Scan the bucket edges past `from`, then bisect the first interval where the residual crosses.
    let lo = from;
    for (const edge of [...EDGES.filter((e) => e > from && e < maxAgeMs), maxAgeMs]) {
      if (this.residualMs(edge, prior, now)! >= horizonMs) {
        let hi = edge;
        for (let i = 0; i < 30 && hi - lo > 1; i += 1) {
          const mid = (lo + hi) / 2;
          if (this.residualMs(mid, prior, now)! >= horizonMs) hi = mid;
          else lo = mid;
        }
        return hi;
      }
      lo = edge;
    }
    return maxAgeMs;
  }
}

function bucketOf(gapMs: number): number {
  if (gapMs < EDGES[1]!) return 0;
  const k = Math.floor(2 * Math.log2(gapMs / 1000));
  // k = 0 is [1 s, 1.41 s), bucket 1; floating error at an edge is settled against the edges themselves.
  let b = Math.min(EDGE_COUNT - 1, Math.max(1, k + 1));
  while (b > 1 && gapMs < EDGES[b]!) b -= 1;
  while (b + 1 < EDGE_COUNT && gapMs >= EDGES[b + 1]!) b += 1;
  return b;
}
