// Use counts in a sliding window of fixed buckets: a ring of `buckets` counters, so memory does not
// grow with the number of uses or with time.
import { InvalidOptionError } from '../../errors';

export class UseWindow {
  private readonly counts: Float64Array;
  /** Absolute index (floor(t / bucketMs)) of the newest bucket written; null before the first add. */
  private newest: number | null = null;

  constructor(
    readonly bucketMs: number,
    readonly buckets: number,
  ) {
    if (!Number.isFinite(bucketMs) || bucketMs <= 0) throw new InvalidOptionError('bucketMs', `expected more than 0 ms, got ${String(bucketMs)}`);
    if (!Number.isInteger(buckets) || buckets < 2 || buckets > 10_000) {
      throw new InvalidOptionError('buckets', `expected an integer in [2, 10000], got ${String(buckets)}`);
    }
    this.counts = new Float64Array(buckets);
  }

  /** Span the window covers, ms. */
  get spanMs(): number {
    return this.bucketMs * this.buckets;
  }

  /** Counters held: always `buckets`, whatever was added. */
  get storedBuckets(): number {
    return this.counts.length;
  }

  bucketOf(t: number): number {
    return Math.floor(t / this.bucketMs);
  }

  /** Counts n uses at time t. A time older than the window is dropped; time never runs backwards here. */
  add(t: number, n = 1): void {
    const b = this.bucketOf(t);
    if (this.newest === null) {
      this.newest = b;
    } else if (b > this.newest) {
      // Clear the buckets the window moved past (at most all of them).
      const steps = Math.min(b - this.newest, this.buckets);
      for (let i = 1; i <= steps; i += 1) this.counts[(this.newest + i) % this.buckets] = 0;
      this.newest = b;
    } else if (b <= this.newest - this.buckets) {
      return;
    }
    this.counts[b % this.buckets]! += n;
  }

  /** Counts per bucket at `now`, oldest first (buckets entries; the last is the current bucket). */
  series(now: number): number[] {
    const end = this.bucketOf(now);
    const out = new Array<number>(this.buckets).fill(0);
    if (this.newest === null) return out;
    for (let i = 0; i < this.buckets; i += 1) {
      const b = end - this.buckets + 1 + i;
      if (b <= this.newest && b > this.newest - this.buckets) out[i] = this.counts[b % this.buckets]!;
    }
    return out;
  }

  /** Uses in the window ending at `now`. */
  total(now: number): number {
    return this.series(now).reduce((a, b) => a + b, 0);
  }

  /** Uses per second over the window. */
  ratePerSecond(now: number): number {
    return this.total(now) / (this.spanMs / 1000);
  }
}
