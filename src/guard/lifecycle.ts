// The guard's life: starting (no sample yet) → ready → draining → closed. Drain refuses new work, waits
// (bounded) for uses in flight, disposes every session and stops sampling; close() follows a drain.
// installShutdownHandlers wires SIGTERM/SIGINT to drain, close, then the caller's onShutdown.
import { GuardDrainingError } from '../errors';
import { onSignals } from '../signals';
import { type Clock, waitAtMost } from './clock';
import type { Reporter } from './reporter';
import type { Session } from './sessions';
import type { HealthState } from './types';

/** What a drain does, supplied by the guard's parts. */
export interface DrainSteps {
  /** Settles when queued admissions have. */
  admissionsSettled(): Promise<void>;
  sessions(): Session[];
  /** Disposes a session for the drain (busy ones too, once the wait timed out). */
  evict(session: Session): Promise<unknown>;
  cancelReservations(): void;
  /** Stops the periodic tick, removes watermarks, closes the monitor if the guard owns it. */
  stop(): void;
}

export interface ShutdownOptions {
  signals?: NodeJS.Signals[];
  /**
   * Runs at once when the signal arrives, beside the drain (stop accepting connections here: in-flight
   * requests still finish). The drain does not wait for it; onShutdown does.
   */
  onSignal?: (signal: NodeJS.Signals) => unknown;
  /** Runs after the guard drained and closed (close your server here). */
  onShutdown?: (signal: NodeJS.Signals) => unknown;
  /** Exit code once done (default 0); false: do not exit. */
  exitCode?: number | false;
}

export class Lifecycle {
  private current: HealthState = 'starting';
  private drainPromise: Promise<void> | null = null;
  private removeSignals: Array<() => void> = [];

  constructor(
    private readonly clock: Clock,
    private readonly report: Reporter,
    private readonly drainTimeout: number,
  ) {}

  get state(): HealthState {
    return this.current;
  }

  /** Ready and not yet draining: admissions and uses are taken. */
  get accepting(): boolean {
    return this.current === 'starting' || this.current === 'ready';
  }

  /** Throws GuardDrainingError once draining or closed. */
  assertAccepting(): void {
    if (!this.accepting) throw new GuardDrainingError(this.current);
  }

  /** starting → ready (the first sample, or at once without NVML). */
  becomeReady(): void {
    if (this.current === 'starting') this.current = 'ready';
  }

  /** Idempotent; every caller gets the same drain. */
  drain(steps: DrainSteps): Promise<void> {
    this.drainPromise ??= this.drainNow(steps);
    return this.drainPromise;
  }

  async close(steps: DrainSteps): Promise<void> {
    await this.drain(steps);
    this.current = 'closed';
    this.uninstallShutdownHandlers();
  }

  /**
   * On the first signal: onSignal at once and drain and close beside it, then onShutdown, then exit with
   * exitCode. A second signal exits at once with 1. Returns an uninstaller.
   */
  installShutdownHandlers(steps: DrainSteps, options: ShutdownOptions = {}): () => void {
    const remove = onSignals(options.signals ?? ['SIGTERM', 'SIGINT'], (signal, count) => {
      if (count > 1) process.exit(1);
      this.report.log('info', { signal }, 'shutting down: draining');
      void (async () => {
        let code = options.exitCode ?? 0;
        try {
          const first = Promise.resolve().then(() => options.onSignal?.(signal));
          await Promise.all([this.close(steps), first]);
          await options.onShutdown?.(signal);
        } catch (error) {
          this.report.log('error', { err: error }, 'shutdown failed');
          if (code !== false) code = 1;
        }
        if (code !== false) process.exit(code);
      })();
    });
    this.removeSignals.push(remove);
    return () => {
      remove();
      this.removeSignals = this.removeSignals.filter((r) => r !== remove);
    };
  }

  uninstallShutdownHandlers(): void {
    for (const remove of this.removeSignals.splice(0)) remove();
  }

  private async drainNow(steps: DrainSteps): Promise<void> {
    this.current = 'draining';
    const sessions = steps.sessions();
    this.report.log('info', { sessions: sessions.length }, 'draining');
    await steps.admissionsSettled();
    const all = steps.sessions();
    await waitAtMost(this.clock, Promise.all(all.map((s) => s.whenIdle())), this.drainTimeout);
    await Promise.all(
      all.map(async (s) => {
        if (s.transition) await s.transition.catch(() => undefined);
        await steps.evict(s);
        s.cancelIdleTimer();
      }),
    );
    steps.cancelReservations();
    steps.stop();
    this.report.log('info', {}, 'drained');
  }
}
