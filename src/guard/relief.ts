// Relief: the pressure loop. Over the soft limit, call the cache releasers (lower priority first), then
// evict idle sessions in the planner's order until usage is at or under the target. Single flight: a
// trigger during a relief asks for one more pass after it. Pressure and breach events mark the start
// of an episode; the episode ends once usage is back under the limit.
import { InvalidOptionError } from '../errors';
import { type Clock, withTimeout } from './clock';
import type { Evictor } from './evictor';
import type { Ledger } from './ledger';
import type { Lifecycle } from './lifecycle';
import type { Meter } from './meter';
import { decideRelief, pickVictim } from './planner';
import type { Reporter } from './reporter';
import type { VictimView } from './keepalive';
import type { Limits, Measurement, PressureEvent } from './types';

interface Releaser {
  name: string;
  fn: () => unknown;
  priority: number;
}

/** The bytes a releaser says it freed: a finite, non-negative number, else null. */
function freedBytesOf(result: unknown): number | null {
  return typeof result === 'number' && Number.isFinite(result) && result >= 0 ? Math.round(result) : null;
}

export interface ReliefParts {
  meter: Meter;
  ledger: Ledger;
  evictor: Evictor;
  lifecycle: Lifecycle;
  report: Reporter;
  clock: Clock;
  limits: Limits;
  releaserTimeout: number;
  returnTimeout: number;
  /** The planner's views of the sessions (with their predicted reuse) at `now`. */
  victims(now: number): VictimView[];
  /** Usage comes from the ledger now (no NVML, or the GPU is lost): no watermark will wake relief. */
  onLedger(): boolean;
}

export class Relief {
  private readonly releasers: Releaser[] = [];
  private relieving: Promise<void> | null = null;
  private again = false;
  private inPressure = false;
  private inBreach = false;
  /** When the sample that crossed the soft limit was read (for reactionMs). */
  private crossingAt: number | null = null;

  constructor(private readonly parts: ReliefParts) {}

  /**
   * Registers a cache releaser; returns its remover. It may resolve to the bytes it freed: relief
   * counts those its own unloads did not take off the ledger (invisible without NVML, not yet seen
   * with it).
   */
  addReleaser(name: string, fn: () => unknown, options: { priority?: number } = {}): () => void {
    if (typeof name !== 'string' || name.length === 0) throw new InvalidOptionError('name', 'expected a non-empty string');
    if (typeof fn !== 'function') throw new InvalidOptionError('releaser', `${name}: expected a function`);
    const priority = options.priority ?? 0;
    if (!Number.isFinite(priority)) throw new InvalidOptionError('priority', `${name}: expected a finite number`);
    const releaser = { name, fn, priority };
    this.releasers.push(releaser);
    this.releasers.sort((a, b) => a.priority - b.priority);
    return () => {
      const at = this.releasers.indexOf(releaser);
      if (at >= 0) this.releasers.splice(at, 1);
    };
  }

  get active(): boolean {
    return this.relieving !== null;
  }

  /** A native watermark crossed: relieve when it went up. */
  onCrossing(crossing: { above: boolean; timestamp: number }): void {
    if (!crossing.above || !this.parts.lifecycle.accepting) return;
    this.crossingAt ??= crossing.timestamp;
    void this.relieve('watermark');
  }

  /** On the ledger nothing wakes relief but the ledger itself: check after sessions come and go. */
  checkLedger(): void {
    if (!this.parts.lifecycle.accepting || !this.parts.onLedger()) return;
    if (this.parts.meter.read().reliefBytes > this.parts.limits.softBytes) void this.relieve('ledger');
  }

  /** Ends the pressure and breach episodes once usage is back under their limits. */
  updateEpisodes(usageBytes: number): void {
    if (usageBytes <= this.parts.limits.softBytes) this.inPressure = false;
    if (usageBytes <= this.parts.limits.hardBytes) this.inBreach = false;
  }

  /** Single flight: releasers, then evictions, until usage is under the target. */
  relieve(trigger: PressureEvent['trigger']): Promise<void> {
    if (this.relieving) {
      this.again = true;
      return this.relieving;
    }
    this.relieving = this.relieveNow(trigger).finally(() => {
      this.relieving = null;
      this.crossingAt = null;
      if (this.again) {
        this.again = false;
        if (this.parts.meter.read().reliefBytes > this.parts.limits.softBytes) void this.relieve(trigger);
      }
    });
    return this.relieving;
  }

  private async relieveNow(trigger: PressureEvent['trigger']): Promise<void> {
    const { meter, limits, lifecycle, report, clock } = this.parts;
    meter.advance();
    let m = meter.read();
    this.updateEpisodes(m.reliefBytes);
    if (m.reliefBytes <= limits.softBytes) return;
    this.startEpisodes(m.reliefBytes, m.inForce, trigger);
    let first = true;
    // Bytes releasers freed that no reading shows: beyond what their own unloads took off the ledger
    // (on the ledger, memory outside sessions' declared bytes is invisible). Counted for this relief.
    let unseen = 0;
    const usage = () => Math.max(0, m.reliefBytes - unseen);
    for (const releaser of [...this.releasers]) {
      if (usage() <= limits.targetBytes || lifecycle.state === 'closed') return;
      const reactionMs = first && this.crossingAt !== null ? Math.max(0, Date.now() - this.crossingAt) : null;
      first = false;
      const called = await this.callReleaser(releaser, m, unseen, reactionMs);
      m = called.m;
      unseen += called.unseenBytes;
    }
    while (lifecycle.accepting) {
      const now = clock.now();
      const decision = decideRelief(usage(), limits.targetBytes, this.parts.victims(now), now);
      if (decision.kind === 'done') return;
      if (decision.kind === 'stuck') {
        report.log('warn', { usageBytes: usage(), targetBytes: limits.targetBytes }, 'nothing left to evict');
        return;
      }
      await this.parts.evictor.evictAndWait(decision.victim.session, 'pressure');
      meter.advance();
      m = meter.read();
    }
  }

  /**
   * Frees up to `bytes` for another process on the GPU (node-wide relief): the releasers, then idle,
   * unpinned sessions in the planner's victim order, each eviction waited for as for our own. Returns
   * the bytes freed (seen back, or declared where NVML cannot tell).
   */
  async releaseFor(bytes: number): Promise<number> {
    const { meter, lifecycle } = this.parts;
    meter.advance();
    let m = meter.read();
    const start = m.reliefBytes;
    let unseen = 0;
    const freedSoFar = () => Math.max(0, start - m.reliefBytes) + unseen;
    for (const releaser of [...this.releasers]) {
      if (freedSoFar() >= bytes || !lifecycle.accepting) break;
      const called = await this.callReleaser(releaser, m, unseen, null);
      m = called.m;
      unseen += called.unseenBytes;
    }
    let freed = freedSoFar();
    while (freed < bytes && lifecycle.accepting) {
      const now = this.parts.clock.now();
      const victim = pickVictim(this.parts.victims(now), now);
      if (!victim) break;
      freed += await this.parts.evictor.evictAndWait(victim.session, 'relief');
    }
    return freed;
  }

  /**
   * Calls one releaser, time-bounded, and reports it. A releaser may return the bytes it freed: what its
   * own unloads did not already take off the ledger counts as returning with NVML (until a reading shows
   * it), and on the ledger, where no reading can, as `unseenBytes` for the caller's relief.
   */
  private async callReleaser(
    releaser: Releaser,
    m: Measurement,
    unseenBefore: number,
    reactionMs: number | null,
  ): Promise<{ m: Measurement; unseenBytes: number }> {
    const { meter, report, clock, ledger } = this.parts;
    const started = clock.now();
    const ledgerBefore = ledger.residentBytes();
    let error: Error | undefined;
    let freedBytes: number | null = null;
    try {
      freedBytes = freedBytesOf(await withTimeout(clock, () => releaser.fn(), this.parts.releaserTimeout, `releaser ${releaser.name}`));
    } catch (e) {
      error = e instanceof Error ? e : new Error(String(e));
      report.log('error', { releaser: releaser.name, err: error }, 'releaser failed');
    }
    const extra = Math.max(0, (freedBytes ?? 0) - Math.max(0, ledgerBefore - ledger.residentBytes()));
    const baseline = meter.rawScopeBytes();
    // With NVML the freed bytes count as returned until a reading shows them (as a dispose's do).
    if (extra > 0 && baseline !== null) meter.credit(extra, baseline);
    const after = await meter.fresh(this.parts.returnTimeout);
    const unseenBytes = extra > 0 && after.source === 'ledger' ? extra : 0;
    report.emit('release', {
      name: releaser.name,
      priority: releaser.priority,
      durationMs: clock.now() - started,
      usageBeforeBytes: Math.max(0, m.reliefBytes - unseenBefore),
      usageAfterBytes: Math.max(0, after.reliefBytes - unseenBefore - unseenBytes),
      reactionMs,
      freedBytes,
      error,
    });
    return { m: after, unseenBytes };
  }

  private startEpisodes(usageBytes: number, scope: PressureEvent['scope'], trigger: PressureEvent['trigger']): void {
    const { limits, report } = this.parts;
    if (!this.inPressure) {
      this.inPressure = true;
      const pressure: PressureEvent = { usageBytes, ...limits, scope, trigger };
      report.report('pressure', pressure, 'warn', 'VRAM over the soft limit');
    }
    if (usageBytes > limits.hardBytes && !this.inBreach) {
      this.inBreach = true;
      report.report('breach', { usageBytes, hardBytes: limits.hardBytes, scope }, 'error', 'VRAM over the hard limit: refusing admissions');
    }
  }
}
