// Usage slope of the scope by least squares over a sliding window: the leak signal behind "restart
// the service every 6 hours". The line is demand/stats.ts fitLine, the one the load forecast fits.
import { fitLine } from './demand/stats';

export interface TrendEstimate {
  /** Bytes per second (positive: growing). */
  slopeBytesPerSecond: number;
  /** Milliseconds until the hard limit at this slope; null when not growing. */
  projectedMsToLimit: number | null;
  /** Span of the samples used, ms. */
  spanMs: number;
  samples: number;
}

export class TrendTracker {
  private readonly points: Array<{ t: number; bytes: number }> = [];

  constructor(private readonly windowMs: number) {}

  add(t: number, bytes: number): void {
    this.points.push({ t, bytes });
    while (this.points.length > 0 && this.points[0]!.t < t - this.windowMs) this.points.shift();
  }

  clear(): void {
    this.points.length = 0;
  }

  /** Null until the window is at least half full with a few points. */
  estimate(limitBytes: number): TrendEstimate | null {
    const n = this.points.length;
    if (n < 5) return null;
    const first = this.points[0]!.t;
    const last = this.points[n - 1]!.t;
    const spanMs = last - first;
    if (spanMs < this.windowMs / 2) return null;
    const fit = fitLine(
      this.points.map((p) => p.t),
      this.points.map((p) => p.bytes),
    );
    if (!fit) return null;
    const slopePerMs = fit.slope;
    const current = this.points[n - 1]!.bytes;
    const projectedMsToLimit = slopePerMs > 0 ? Math.max(0, (limitBytes - current) / slopePerMs) : null;
    return { slopeBytesPerSecond: slopePerMs * 1000, projectedMsToLimit, spanMs, samples: n };
  }
}
