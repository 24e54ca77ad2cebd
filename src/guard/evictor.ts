// The evictor: one eviction. A time-bounded dispose (one that throws or hangs is reported and left
// behind), the meter credited with the bytes, and, for evictions that make room, a wait until most of
// the memory came back (no cascades on NVML's lag).
import { TimeoutError } from '../errors';
import type { Clock } from './clock';
import { withTimeout } from './clock';
import type { Meter } from './meter';
import { familyBlock } from './planner';
import type { Reporter } from './reporter';
import type { EvictReason, Session } from './sessions';
import type { EvictEvent } from './types';

export interface EvictorOptions {
  disposeTimeout: number;
  returnTimeout: number;
  returnRatio: number;
}

/**
 * Whether `reason` may dispose this session now: pinned ones only when asked, busy ones only in a
 * drain, a parent only when its children may go with it; a child whose parent goes always goes.
 */
export function mayEvict(session: Session, reason: EvictReason): boolean {
  if (session.state !== 'loaded') return false;
  if (reason === 'parent' || reason === 'external') return true;
  if (session.pinned && reason !== 'unload' && reason !== 'drain') return false;
  if (session.busy > 0 && reason !== 'drain') return false;
  if (reason !== 'unload' && reason !== 'drain' && familyBlock(session) !== null) return false;
  return true;
}

export class Evictor {
  constructor(
    private readonly meter: Meter,
    private readonly clock: Clock,
    private readonly report: Reporter,
    private readonly options: EvictorOptions,
  ) {}

  /** Disposes once, time-bounded. Resolves false when the session may not be evicted for this reason. */
  async evict(session: Session, reason: EvictReason): Promise<boolean> {
    if (!mayEvict(session, reason)) return false;
    session.state = 'evicting';
    session.cancelIdleTimer();
    // A child cannot outlive its parent: children are disposed first, each its own event.
    if (session.children.length > 0) await this.evictChildren(session);
    const baseline = this.meter.rawScopeBytes();
    const started = this.clock.now();
    const dispose = session.takeDispose();
    const outcome = withTimeout(this.clock, dispose, this.options.disposeTimeout, `dispose of ${session.id}`).then(
      () => ({ error: undefined, timedOut: false }),
      (error: unknown) => ({
        error: error instanceof Error ? error : new Error(String(error)),
        timedOut: error instanceof TimeoutError,
      }),
    );
    session.transition = outcome;
    const { error, timedOut } = await outcome;
    session.transition = undefined;
    session.evictions += 1;
    if (session.state === 'evicting') session.state = 'evicted';
    // Counted as returned for a while even if NVML lags: evictAndWait waits returnTimeout, and a reading
    // that lags longer must not trigger the next eviction at once.
    if (baseline !== null) this.meter.credit(session.bytes, baseline);
    const event: EvictEvent = { id: session.id, bytes: session.bytes, reason, durationMs: this.clock.now() - started, timedOut };
    if (error) event.error = error;
    this.report.report('evict', event, error ? 'error' : 'info', error ? 'dispose failed' : 'session evicted', { err: error });
    return true;
  }

  /**
   * Takes off the books a session whose memory went without the guard: no dispose, no credit (NVML
   * shows the memory gone already, or never saw it); its children are disposed first.
   */
  async markEvicted(session: Session): Promise<boolean> {
    if (!mayEvict(session, 'external')) return false;
    session.state = 'evicting';
    session.cancelIdleTimer();
    const started = this.clock.now();
    if (session.children.length > 0) await this.evictChildren(session);
    session.takeDispose();
    session.evictions += 1;
    if (session.state === 'evicting') session.state = 'evicted';
    const event: EvictEvent = { id: session.id, bytes: session.bytes, reason: 'external', durationMs: this.clock.now() - started, timedOut: false };
    this.report.report('evict', event, 'info', 'session evicted from outside the guard');
    return true;
  }

  private async evictChildren(session: Session): Promise<void> {
    await Promise.all(
      session.children.map(async (child) => {
        if (child.state === 'loaded') await this.evict(child, 'parent');
        else if (child.transition) await child.transition.catch(() => undefined);
      }),
    );
  }

  /** Evicts, then waits until most of the bytes came back (or returnTimeout). Resolves the bytes seen back. */
  async evictAndWait(victim: Session, reason: EvictReason): Promise<number> {
    const before = this.meter.rawScopeBytes();
    if (!(await this.evict(victim, reason))) return 0;
    if (before === null) return victim.bytes;
    const deadline = this.clock.now() + this.options.returnTimeout;
    const wanted = victim.bytes * this.options.returnRatio;
    for (;;) {
      const raw = this.meter.rawScopeBytes();
      if (raw !== null && before - raw >= wanted) return before - raw;
      const left = deadline - this.clock.now();
      if (left <= 0) {
        this.report.log('warn', { id: victim.id, bytes: victim.bytes }, 'memory did not come back in time after dispose');
        return Math.max(0, before - (raw ?? before));
      }
      await this.meter.nextSample(left);
    }
  }
}
