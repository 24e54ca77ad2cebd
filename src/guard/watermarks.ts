// The guard's two native watermarks (soft and hard limit) on its device: summing the scope's pids, or
// the device's used bytes once per-process accounting is off. Re-subscribed only when that changes.
import type { GuardMonitor } from './types';

type Subscription = ReturnType<GuardMonitor['watch']>;

export class WatermarkSubscription {
  private subscriptions: Subscription[] = [];
  /** 'device', 'pids:1,2,3', or null before the first sync. */
  private mode: string | null = null;

  constructor(
    private readonly monitor: GuardMonitor,
    private readonly device: number,
    private readonly thresholds: readonly number[],
    /** A MIG target: the watermarks sum that MIG device's bytes. */
    private readonly migUuid: string | null = null,
  ) {}

  /** Watches `pids` (summed), or the device's used bytes when undefined. No-op when unchanged. */
  sync(pids: readonly number[] | undefined): void {
    const mode = pids ? `pids:${pids.join(',')}` : 'device';
    if (mode === this.mode) return;
    if (pids && this.mode?.startsWith('pids:')) {
      for (const w of this.subscriptions) w.update({ pids: [...pids] });
    } else {
      for (const w of this.subscriptions) w.remove();
      this.subscriptions = this.thresholds.map((thresholdBytes) =>
        this.monitor.watch({ device: this.device, thresholdBytes, pids: pids ? [...pids] : undefined, ...(this.migUuid ? { migUuid: this.migUuid } : {}) }),
      );
    }
    this.mode = mode;
  }

  removeAll(): void {
    for (const w of this.subscriptions) w.remove();
    this.subscriptions = [];
    this.mode = null;
  }
}
