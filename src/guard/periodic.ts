// The periodic tick (every second): re-read the process tree, take in the latest sample, watch the
// usage trend (leak warning), advise a recycle when idle, and start relief if usage is over the soft
// limit without a crossing having said so (a watermark missed while relief ran); then the keep-alive's
// share (forecast, adaptive expiries, pre-warming).
import type { Clock, TimerHandle } from './clock';
import type { KeepAlive } from './keepalive';
import type { Ledger } from './ledger';
import type { Lifecycle } from './lifecycle';
import type { Meter } from './meter';
import type { Relief } from './relief';
import type { Reporter } from './reporter';
import { TrendTracker } from './trend';
import type { Limits } from './types';

export const PERIODIC_MS = 1000;

export interface PeriodicParts {
  meter: Meter;
  ledger: Ledger;
  relief: Relief;
  keepAlive: KeepAlive;
  lifecycle: Lifecycle;
  report: Reporter;
  clock: Clock;
  limits: Limits;
  trend: { window: number; horizon: number } | null;
  recycle: { every: number | null; onLeak: boolean } | null;
  startedAt: number;
}

export class Periodic {
  private timer: TimerHandle | undefined;
  private readonly trend: TrendTracker | null;
  private lastTrendAt = -Infinity;
  private leakSuspected = false;
  private lastRecycleAt: number;

  constructor(private readonly parts: PeriodicParts) {
    this.trend = parts.trend ? new TrendTracker(parts.trend.window) : null;
    this.lastRecycleAt = parts.startedAt;
  }

  start(): void {
    this.timer = this.parts.clock.setTimer(() => {
      if (!this.parts.lifecycle.accepting) return;
      try {
        this.tick();
      } finally {
        this.start();
      }
    }, PERIODIC_MS);
  }

  stop(): void {
    this.timer?.cancel();
    this.timer = undefined;
  }

  tick(): void {
    const { meter, relief, limits, clock } = this.parts;
    meter.refreshTree();
    meter.advance();
    const m = meter.read();
    const now = clock.now();
    if (m.source === 'nvml') this.watchTrend(now, m.scopeBytes);
    this.adviseRecycle(now);
    relief.updateEpisodes(m.reliefBytes);
    if (m.reliefBytes > limits.softBytes && !relief.active) void relief.relieve('periodic');
    this.parts.keepAlive.tick(now, m);
  }

  private watchTrend(now: number, usageBytes: number): void {
    const trend = this.parts.trend;
    if (!this.trend || !trend) return;
    this.trend.add(now, usageBytes);
    const estimate = this.trend.estimate(this.parts.limits.hardBytes);
    if (estimate?.projectedMsToLimit == null || estimate.projectedMsToLimit >= trend.horizon) return;
    if (now - this.lastTrendAt < trend.window) return;
    this.lastTrendAt = now;
    this.leakSuspected = true;
    const event = {
      slopeBytesPerSecond: estimate.slopeBytesPerSecond,
      projectedMsToLimit: estimate.projectedMsToLimit,
      usageBytes,
      hardBytes: this.parts.limits.hardBytes,
      horizonMs: trend.horizon,
    };
    this.parts.report.report('trend', event, 'warn', 'VRAM usage trending to the hard limit (leak?)');
  }

  private adviseRecycle(now: number): void {
    const recycle = this.parts.recycle;
    if (!recycle || !this.parts.ledger.idle()) return;
    const uptimeMs = now - this.parts.startedAt;
    if (recycle.every !== null && now - this.lastRecycleAt >= recycle.every) {
      this.lastRecycleAt = now;
      this.parts.report.emit('recycle', { reason: 'schedule', uptimeMs, detail: `every ${recycle.every} ms` });
    } else if (recycle.onLeak && this.leakSuspected) {
      this.leakSuspected = false;
      this.lastRecycleAt = now;
      this.parts.report.emit('recycle', { reason: 'leak', uptimeMs, detail: 'usage trending to the hard limit' });
    }
  }
}
