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

  /** Registers a cache releaser; returns its remover. */
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
    for (const releaser of [...this.releasers]) {
      if (m.reliefBytes <= limits.targetBytes || lifecycle.state === 'closed') return;
      const reactionMs = first && this.crossingAt !== null ? Math.max(0, Date.now() - this.crossingAt) : null;
      first = false;
      m = await this.callReleaser(releaser, m, reactionMs);
    }
    while (lifecycle.accepting) {
      const now = clock.now();
      const decision = decideRelief(m.reliefBytes, limits.targetBytes, this.parts.victims(now), now);
      if (decision.kind === 'done') return;
      if (decision.kind === 'stuck') {
        report.log('warn', { usageBytes: m.reliefBytes, targetBytes: limits.targetBytes }, 'nothing left to evict');
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
    for (const releaser of [...this.releasers]) {
      if (start - m.reliefBytes >= bytes || !lifecycle.accepting) break;
      m = await this.callReleaser(releaser, m, null);
    }
    let freed = Math.max(0, start - m.reliefBytes);
    while (freed < bytes && lifecycle.accepting) {
      const now = this.parts.clock.now();
      const victim = pickVictim(this.parts.victims(now), now);
      if (!victim) break;
      freed += await this.parts.evictor.evictAndWait(victim.session, 'relief');
    }
    return freed;
  }

  private async callReleaser(releaser: Releaser, m: Measurement, reactionMs: number | null): Promise<Measurement> {
    const { meter, report, clock } = this.parts;
    const started = clock.now();
    let error: Error | undefined;
    try {
      await withTimeout(clock, () => releaser.fn(), this.parts.releaserTimeout, `releaser ${releaser.name}`);
    } catch (e) {
      error = e instanceof Error ? e : new Error(String(e));
      report.log('error', { releaser: releaser.name, err: error }, 'releaser failed');
    }
    const after = await meter.fresh(this.parts.returnTimeout);
    report.emit('release', {
      name: releaser.name,
      priority: releaser.priority,
      durationMs: clock.now() - started,
      usageBeforeBytes: m.reliefBytes,
      usageAfterBytes: after.reliefBytes,
      reactionMs,
      error,
    });
    return after;
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
