// One session's demand: its uses in a sliding window, an EWMA of its use rate (per bucket) and of the
// gap between use starts, its gaps in a decaying histogram (gaps.ts) and from that the predicted time
// to its next use (the gaps' mean residual life at its idle time, the guard's pooled gaps as the prior),
// and the measured time of its last load. Events mutate; queries do not.
import { GapHistogram } from './gaps';
import { ewmaDecay, ewmaStep, validateAlpha } from './stats';
import { UseWindow } from './window';

export interface DemandOptions {
  /** EWMA smoothing factor, 0.1–0.3. Default 0.2. */
  alpha?: number;
  /** Width of one bucket of the window, ms. Default 10 s. */
  bucketMs?: number;
  /** Buckets in the window. Default 60 (10 minutes of 10 s). */
  buckets?: number;
  /** Half-life of the recorded gaps' weights, ms. Default 1 h. */
  halfLifeMs?: number;
  /** Every adaptive session's gaps together (the guard's): the prior where this session's own say little. */
  pool?: GapHistogram | null;
}

export const DEFAULT_DEMAND = { alpha: 0.2, bucketMs: 10_000, buckets: 60, halfLifeMs: 3_600_000 } as const;

/** What the guard reads to decide (and shows in status()). */
export interface DemandEstimate {
  uses: number;
  /** Uses started in the window. */
  windowUses: number;
  /** EWMA of the per-bucket use rate, per minute; null before the first use. */
  ratePerMinute: number | null;
  /** EWMA of the gap between use starts, ms; null with fewer than two uses. */
  gapMs: number | null;
  /** Gaps on record (decayed: a gap counts half after one half-life). */
  gapsRecorded: number;
  /** True once there is a gap to predict from. */
  hasHistory: boolean;
  /** When the next use is expected (ms, the clock's time); null without history. */
  nextUseAt: number | null;
  /** The expected wait for the next use given the idle time so far (mean residual life); null without history. */
  nextUseInMs: number | null;
  lastUseStartAt: number | null;
  lastUseEndAt: number | null;
  /** From the first use start to the last: how long the pattern has been watched, ms. */
  historyMs: number;
  /** How long the last load (through the guard) took, ms; null when never measured. */
  lastLoadMs: number | null;
}

export class SessionDemand {
  readonly window: UseWindow;
  readonly alpha: number;
  readonly gaps: GapHistogram;
  readonly pool: GapHistogram | null;
  private uses = 0;
  private lastStartAt: number | null = null;
  private firstStartAt: number | null = null;
  private lastEndAt: number | null = null;
  private gapMean: number | null = null;
  private rate: number | null = null;
  private rateBucket = 0;
  private rateCount = 0;
  private lastLoadMs: number | null = null;

  constructor(options: DemandOptions = {}) {
    this.alpha = validateAlpha(options.alpha ?? DEFAULT_DEMAND.alpha, 'keepAlive.alpha');
    this.window = new UseWindow(options.bucketMs ?? DEFAULT_DEMAND.bucketMs, options.buckets ?? DEFAULT_DEMAND.buckets);
    this.gaps = new GapHistogram(options.halfLifeMs ?? options.pool?.halfLifeMs ?? DEFAULT_DEMAND.halfLifeMs);
    this.pool = options.pool ?? null;
  }

  /** A use began (call when use() is entered, before any reload). */
  useStarted(t: number): void {
    if (this.lastStartAt !== null) {
      const gap = Math.max(0, t - this.lastStartAt);
      this.gaps.add(gap, t);
      this.pool?.add(gap, t);
      this.gapMean = ewmaStep(this.gapMean, gap, this.alpha);
    }
    const folded = this.foldRate(t);
    this.rate = folded.rate;
    this.rateBucket = folded.bucket;
    this.rateCount = folded.count + 1;
    this.lastStartAt = t;
    this.firstStartAt ??= t;
    this.uses += 1;
    this.window.add(t);
  }

  /** A use ended (settled, either way). */
  useEnded(t: number): void {
    this.lastEndAt = t;
  }

  /** A load through the guard finished after durationMs (admission wait excluded). */
  loadMeasured(durationMs: number): void {
    if (Number.isFinite(durationMs) && durationMs >= 0) this.lastLoadMs = durationMs;
  }

  /** The expected wait for the next use at `now` (null without a recorded gap). */
  waitAt(now: number): number | null {
    if (this.lastStartAt === null) return null;
    return this.gaps.residualMs(now - this.lastStartAt, this.pool, now);
  }

  /**
   * The idle time, from the end of the last use, after which the expected wait for the next use first
   * exceeds horizonMs, searched up to maxIdleMs; null without a recorded gap. Pure.
   */
  idleUntilWaitExceeds(horizonMs: number, maxIdleMs: number, now: number): number | null {
    if (this.lastStartAt === null) return null;
    // Ages count from the last use's start (gaps are start to start); the idle time from its end.
    const endAge = Math.max(0, (this.lastEndAt ?? this.lastStartAt) - this.lastStartAt);
    const age = this.gaps.ageWhenWaitExceeds(horizonMs, endAge, endAge + maxIdleMs, this.pool, now);
    return age === null ? null : age - endAge;
  }

  estimate(now: number): DemandEstimate {
    const wait = this.waitAt(now);
    // Before the first bucket closed, the open bucket's own rate.
    const folded = this.foldRate(now);
    const rate = this.uses === 0 ? null : (folded.rate ?? folded.count / (this.window.bucketMs / 1000));
    return {
      uses: this.uses,
      windowUses: this.window.total(now),
      ratePerMinute: rate === null ? null : rate * 60,
      gapMs: this.gapMean,
      gapsRecorded: this.gaps.gaps,
      hasHistory: wait !== null,
      nextUseAt: wait === null ? null : now + wait,
      nextUseInMs: wait,
      lastUseStartAt: this.lastStartAt,
      lastUseEndAt: this.lastEndAt,
      historyMs: this.firstStartAt === null || this.lastStartAt === null ? 0 : this.lastStartAt - this.firstStartAt,
      lastLoadMs: this.lastLoadMs,
    };
  }

  /**
   * The rate EWMA as of time t without changing state: every bucket closed since the last use is
   * folded in (the one with uses, then the empty ones in closed form). Per second.
   */
  private foldRate(t: number): { rate: number | null; bucket: number; count: number } {
    const bucket = this.window.bucketOf(t);
    if (this.uses === 0) return { rate: null, bucket, count: 0 };
    if (bucket <= this.rateBucket) return { rate: this.rate, bucket: this.rateBucket, count: this.rateCount };
    const seconds = this.window.bucketMs / 1000;
    const closed = ewmaStep(this.rate, this.rateCount / seconds, this.alpha);
    return { rate: ewmaDecay(closed, bucket - this.rateBucket - 1, this.alpha), bucket, count: 0 };
  }
}
