// A per-GPU load forecast: scope usage averaged in buckets over a sliding window, a least-squares line
// over the window projected `horizon` ahead. Every forecast made at a bucket's close is kept until its
// horizon arrives and then compared with the usage seen then, so its error is measured, not assumed.
import { InvalidOptionError } from '../../errors';
import { fitLine, type LineFit } from './stats';

export interface ForecastOptions {
  /** Bucket width, ms. Default 10 s. */
  bucketMs?: number;
  /** Regression window, ms. Default 10 minutes. */
  windowMs?: number;
  /** How far ahead, ms. Default 1 minute. */
  horizonMs?: number;
  /** Errors kept for the accuracy figures. Default 60. */
  errorsKept?: number;
}

export interface LoadForecastView {
  /** Forecast usage at now + horizonMs (never below 0). */
  predictedBytes: number;
  horizonMs: number;
  slopeBytesPerSecond: number;
  /** Buckets the line was fitted to. */
  buckets: number;
}

export interface ForecastAccuracy {
  /** Forecasts whose horizon arrived. */
  evaluated: number;
  /** Mean absolute error over the last errorsKept evaluations; null before the first. */
  meanAbsErrorBytes: number | null;
  /** Mean of (predicted - actual): positive when the forecast runs high. */
  meanErrorBytes: number | null;
  /** Mean absolute error over the mean actual usage, same evaluations. */
  meanAbsErrorRatio: number | null;
  lastErrorBytes: number | null;
}

interface Bucket {
  index: number;
  n: number;
  sumT: number;
  sumBytes: number;
}

export class LoadForecast {
  readonly bucketMs: number;
  readonly windowMs: number;
  readonly horizonMs: number;
  private readonly maxBuckets: number;
  private readonly errorsKept: number;
  private readonly buckets: Bucket[] = [];
  private readonly pending: Array<{ targetAt: number; fit: LineFit }> = [];
  private readonly errors: Array<{ error: number; actual: number }> = [];
  private evaluated = 0;
  private lastError: number | null = null;

  constructor(options: ForecastOptions = {}) {
    const positive = (value: number, name: string) => {
      if (!Number.isFinite(value) || value <= 0) throw new InvalidOptionError(`forecast.${name}`, `expected more than 0, got ${String(value)}`);
      return value;
    };
    this.bucketMs = positive(options.bucketMs ?? 10_000, 'bucketMs');
    this.windowMs = positive(options.windowMs ?? 600_000, 'windowMs');
    this.horizonMs = positive(options.horizonMs ?? 60_000, 'horizonMs');
    this.errorsKept = Math.floor(positive(options.errorsKept ?? 60, 'errorsKept'));
    if (this.windowMs < 3 * this.bucketMs) {
      throw new InvalidOptionError('forecast.windowMs', `(${this.windowMs} ms) must hold at least 3 buckets of ${this.bucketMs} ms`);
    }
    this.maxBuckets = Math.ceil(this.windowMs / this.bucketMs);
  }

  /** Buckets held: never more than windowMs / bucketMs. */
  get storedBuckets(): number {
    return this.buckets.length;
  }

  /** Forecasts waiting for their horizon: never more than horizonMs / bucketMs + 1. */
  get pendingForecasts(): number {
    return this.pending.length;
  }

  /** One usage reading (the periodic tick's). Times must not run backwards. */
  add(t: number, bytes: number): void {
    if (!Number.isFinite(bytes)) return;
    // Forecasts whose horizon arrived are judged against this reading, at this reading's time (the
    // reading may come a little after the horizon).
    while (this.pending.length > 0 && this.pending[0]!.targetAt <= t) {
      const { fit } = this.pending.shift()!;
      const error = Math.max(0, fit.intercept + fit.slope * t) - bytes;
      this.evaluated += 1;
      this.lastError = error;
      this.errors.push({ error, actual: bytes });
      if (this.errors.length > this.errorsKept) this.errors.shift();
    }
    const index = Math.floor(t / this.bucketMs);
    const last = this.buckets[this.buckets.length - 1];
    if (last && index < last.index) return;
    if (!last || index > last.index) {
      // The previous bucket closed: forecast from the window as it stands.
      if (last) {
        const fit = this.fit(t);
        if (fit) this.pending.push({ targetAt: t + this.horizonMs, fit });
      }
      this.buckets.push({ index, n: 0, sumT: 0, sumBytes: 0 });
      while (this.buckets.length > 0 && this.buckets[0]!.index <= index - this.maxBuckets) this.buckets.shift();
    }
    const b = this.buckets[this.buckets.length - 1]!;
    b.n += 1;
    b.sumT += t;
    b.sumBytes += bytes;
  }

  /** The line over the window, projected horizonMs past now; null with fewer than 3 buckets. */
  forecast(now: number, horizonMs = this.horizonMs): LoadForecastView | null {
    const fit = this.fit(now);
    if (!fit) return null;
    return {
      predictedBytes: Math.max(0, fit.intercept + fit.slope * (now + horizonMs)),
      horizonMs,
      slopeBytesPerSecond: fit.slope * 1000,
      buckets: fit.points,
    };
  }

  /** Least squares over the window's bucket means (x: each bucket's mean sample time). */
  private fit(now: number): LineFit | null {
    const first = Math.floor(now / this.bucketMs) - this.maxBuckets + 1;
    const last = Math.floor(now / this.bucketMs);
    const used = this.buckets.filter((b) => b.index >= first && b.index <= last && b.n > 0);
    if (used.length < 3) return null;
    return fitLine(
      used.map((b) => b.sumT / b.n),
      used.map((b) => b.sumBytes / b.n),
    );
  }

  accuracy(): ForecastAccuracy {
    const n = this.errors.length;
    if (n === 0) return { evaluated: this.evaluated, meanAbsErrorBytes: null, meanErrorBytes: null, meanAbsErrorRatio: null, lastErrorBytes: null };
    let abs = 0;
    let signed = 0;
    let actual = 0;
    for (const e of this.errors) {
      abs += Math.abs(e.error);
      signed += e.error;
      actual += e.actual;
    }
    return {
      evaluated: this.evaluated,
      meanAbsErrorBytes: abs / n,
      meanErrorBytes: signed / n,
      meanAbsErrorRatio: actual > 0 ? abs / actual : null,
      lastErrorBytes: this.lastError,
    };
  }
}
