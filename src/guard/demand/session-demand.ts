// One session's demand: its uses in a sliding window, an EWMA of its use rate (per bucket) and of the
// gap between use starts (with its mean deviation, as TCP smooths round-trip times), the measured time
// of its last load, and from these the predicted time to its next use. Events mutate; queries do not.
import { ewmaDecay, ewmaStep, validateAlpha } from './stats';
import { UseWindow } from './window';

export interface DemandOptions {
  /** EWMA smoothing factor, 0.1–0.3. Default 0.2. */
  alpha?: number;
  /** Width of one bucket of the window, ms. Default 10 s. */
  bucketMs?: number;
  /** Buckets in the window. Default 60 (10 minutes of 10 s). */
  buckets?: number;
}

/** A gap beyond mean + this many deviations is a pause. */
const PAUSE_DEVIATIONS = 4;

export const DEFAULT_DEMAND = { alpha: 0.2, bucketMs: 10_000, buckets: 60 } as const;

/** What the guard reads to decide (and shows in status()). */
export interface DemandEstimate {
  uses: number;
  /** Uses started in the window. */
  windowUses: number;
  /** EWMA of the per-bucket use rate, per minute; null before the first use. */
  ratePerMinute: number | null;
  /** EWMA of the gap between use starts, ms; null with fewer than two uses. */
  gapMs: number | null;
  /** EWMA of the gap's absolute deviation from its mean, ms. */
  gapDevMs: number | null;
  /**
   * EWMA of the pauses: gaps longer than the mean plus 4 deviations at the time (the quiet spells
   * between bursts, which the gap's mean hides); null before the first.
   */
  pauseMs: number | null;
  /** True once there is a gap to predict from. */
  hasHistory: boolean;
  /** When the next use is expected (ms, the clock's time); null without history. */
  nextUseAt: number | null;
  /** nextUseAt - now, never negative; null without history. */
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
  private uses = 0;
  private lastStartAt: number | null = null;
  private firstStartAt: number | null = null;
  private lastEndAt: number | null = null;
  private gapMean: number | null = null;
  private gapDev: number | null = null;
  private pauseMean: number | null = null;
  private rate: number | null = null;
  private rateBucket = 0;
  private rateCount = 0;
  private lastLoadMs: number | null = null;

  constructor(options: DemandOptions = {}) {
    this.alpha = validateAlpha(options.alpha ?? DEFAULT_DEMAND.alpha, 'keepAlive.alpha');
    this.window = new UseWindow(options.bucketMs ?? DEFAULT_DEMAND.bucketMs, options.buckets ?? DEFAULT_DEMAND.buckets);
  }

  /** A use began (call when use() is entered, before any reload). */
  useStarted(t: number): void {
    if (this.lastStartAt !== null) {
      const gap = Math.max(0, t - this.lastStartAt);
      if (this.gapMean !== null && gap > this.gapMean + PAUSE_DEVIATIONS * (this.gapDev ?? 0)) {
        this.pauseMean = ewmaStep(this.pauseMean, gap, this.alpha);
      }
      // Deviation first, against the mean before this sample (RFC 6298 order).
      this.gapDev = this.gapMean === null ? gap / 2 : ewmaStep(this.gapDev, Math.abs(gap - this.gapMean), this.alpha);
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

  estimate(now: number): DemandEstimate {
    const hasHistory = this.gapMean !== null && this.lastStartAt !== null;
    let nextUseAt: number | null = null;
    if (hasHistory) {
      const due = this.lastStartAt! + this.gapMean!;
      // Overdue: the pattern is breaking; the longer past due, the further the next use (by as much).
      nextUseAt = due >= now ? due : now + (now - due);
    }
    // Before the first bucket closed, the open bucket's own rate.
    const folded = this.foldRate(now);
    const rate = this.uses === 0 ? null : (folded.rate ?? folded.count / (this.window.bucketMs / 1000));
    return {
      uses: this.uses,
      windowUses: this.window.total(now),
      ratePerMinute: rate === null ? null : rate * 60,
      gapMs: this.gapMean,
      gapDevMs: this.gapDev,
      pauseMs: this.pauseMean,
      hasHistory,
      nextUseAt,
      nextUseInMs: nextUseAt === null ? null : Math.max(0, nextUseAt - now),
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
