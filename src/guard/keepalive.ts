// Keep-alive that follows demand (issue 12), the guard's part: gives adaptive sessions their demand
// model and decides their TTL under the GPU's pressure, builds the views the planner orders victims by
// (predicted reuse, LRU without it), measures loads, and on the periodic tick feeds the load forecast,
// moves adaptive expiries in when pressure shrank them, and pre-warms. The decisions themselves are the
// pure functions of demand/.
import { LoadForecast } from './demand/forecast';
import { GapHistogram } from './demand/gaps';
import { type ResolvedKeepAlive, resolveSessionKeepAlive, type SessionKeepAliveOptions } from './demand/options';
import { planPrewarm, type PrewarmCandidate } from './demand/prewarm';
import { SessionKeepAlive } from './demand/session-keepalive';
import type { Admission } from './admission';
import type { Clock } from './clock';
import type { Ledger } from './ledger';
import type { Lifecycle } from './lifecycle';
import type { Meter } from './meter';
import type { Candidate } from './planner';
import type { Relief } from './relief';
import type { Reporter } from './reporter';
import type { Session } from './sessions';
import type { GuardKeepAliveStatus, Limits, Measurement } from './types';

/** A session as the planner sees it, with the session itself for carrying the decision out. */
export type VictimView = Candidate & { readonly session: Session };

/** The planner's views of `sessions` at `now`: non-adaptive sessions have no prediction (LRU order). */
export function victimViews(sessions: readonly Session[], now: number): VictimView[] {
  return sessions.map((s) => {
    const e = s.keepAlive?.estimate(now);
    return {
      id: s.id,
      bytes: s.bytes,
      state: s.state,
      busy: s.busy,
      pinned: s.pinned,
      priority: s.priority,
      lastUsedAt: s.lastUsedAt,
      children: s.children,
      nextUseInMs: e?.nextUseInMs ?? null,
      reloadMs: e?.lastLoadMs ?? null,
      session: s,
    };
  });
}

export interface KeepAliveParts {
  options: ResolvedKeepAlive | null;
  meter: Meter;
  ledger: Ledger;
  relief: Relief;
  lifecycle: Lifecycle;
  report: Reporter;
  clock: Clock;
  limits: Limits;
  paddingBytes: number;
  /** The periodic tick's interval: a use due before the next tick cannot wait for it. */
  tickMs: number;
}

export class KeepAlive {
  private readonly forecast: LoadForecast | null;
  private admission: Admission | null = null;
  private prewarming = false;
  private lastPrewarm: GuardKeepAliveStatus['lastPrewarm'] = null;
  /** Every adaptive session's gaps: the prior of each where its own history says little yet. */
  private readonly pool: GapHistogram;

  constructor(private readonly parts: KeepAliveParts) {
    const forecast = parts.options?.forecast;
    this.forecast = forecast ? new LoadForecast({ horizonMs: forecast.horizonMs }) : null;
    this.pool = new GapHistogram(parts.options?.demand.halfLifeMs);
  }

  /** Admission is built after this part (it needs the views): wired once both exist. */
  attach(admission: Admission): void {
    this.admission = admission;
  }

  /** A new session's keep-alive: its demand model when adaptive, else null (the fixed TTL). */
  sessionKeepAlive(id: string, options: SessionKeepAliveOptions | undefined, fallbackMs: number | null): SessionKeepAlive | null {
    const resolved = resolveSessionKeepAlive(options, this.parts.options, id);
    if (!resolved.adaptive || !this.parts.options) return null;
    return new SessionKeepAlive(resolved.bounds, { ...this.parts.options.demand, pool: this.pool }, fallbackMs);
  }

  /** An adaptive session's TTL now: from its prediction, shorter under pressure (relief's usage over soft). */
  decideTtl(keepAlive: SessionKeepAlive): number | null {
    const m = this.parts.meter.read();
    return keepAlive.decide(this.parts.clock.now(), m.reliefBytes / this.parts.limits.softBytes).ttlMs;
  }

  views(now: number): VictimView[] {
    return victimViews(this.parts.ledger.all(), now);
  }

  /** A load through the guard finished after durationMs (admission's wait excluded). */
  loaded(session: Session, durationMs: number, prewarm: boolean): void {
    session.keepAlive?.demand.loadMeasured(durationMs);
    this.parts.report.report('load', { id: session.id, bytes: session.bytes, durationMs, prewarm }, 'info', prewarm ? 'session pre-warmed' : 'session reloaded');
  }

  /** The periodic tick's share: forecast, adaptive expiries, pre-warming. */
  tick(now: number, m: Measurement): void {
    if (!this.parts.options) return;
    // The forecast follows the scope's usage in both modes: on the ledger that is the declared load.
    this.forecast?.add(now, m.scopeBytes);
    for (const s of this.parts.ledger.all()) if (s.keepAlive) s.reviewIdleTimer();
    this.prewarm(now, m);
  }

  status(now: number): GuardKeepAliveStatus {
    const options = this.parts.options;
    const f = this.forecast?.forecast(now) ?? null;
    return {
      adaptive: options?.adaptive ?? false,
      prewarm: options?.prewarm ?? false,
      forecast: this.forecast
        ? {
            predictedBytes: f?.predictedBytes ?? null,
            horizonMs: this.forecast.horizonMs,
            slopeBytesPerSecond: f?.slopeBytesPerSecond ?? null,
            accuracy: this.forecast.accuracy(),
          }
        : null,
      lastPrewarm: this.lastPrewarm,
    };
  }

  /**
   * Loads the most urgent evicted session predicted within its reload time, into the room under the
   * relief target (never making admission evict), or with allowEviction by evicting only sessions
   * predicted later. One at a time, never while an admission or a relief is under way.
   */
  private prewarm(now: number, m: Measurement): void {
    const { options, ledger, limits, relief, lifecycle } = this.parts;
    const prewarm = options?.prewarm;
    const admission = this.admission;
    if (!prewarm || !admission || this.prewarming || admission.queued > 0 || relief.active || !lifecycle.accepting) return;
    const sessions = ledger.all();
    const candidates: PrewarmCandidate[] = [];
    for (const s of sessions) {
      if (s.state !== 'evicted' || !s.reloadable || !s.keepAlive) continue;
      const e = s.keepAlive.estimate(now);
      candidates.push({ id: s.id, bytes: s.bytes, priority: s.priority, uses: e.uses, nextUseInMs: e.nextUseInMs, reloadMs: e.lastLoadMs });
    }
    if (candidates.length === 0) return;
    const free = ledger.free(m, { hardBytes: limits.hardBytes, paddingBytes: this.parts.paddingBytes }).free;
    // On the ledger the scope's usage already holds the reservations.
    const reserved = m.source === 'nvml' ? ledger.reservedBytes() : 0;
    const plan = planPrewarm({
      now,
      roomBytes: Math.min(free, limits.targetBytes - m.scopeBytes - reserved),
      candidates,
      residents: prewarm.allowEviction ? victimViews(sessions, now).filter((v) => v.state === 'loaded') : [],
      leadMs: this.parts.tickMs,
      minUses: prewarm.minUses,
      allowEviction: prewarm.allowEviction,
    });
    const load = plan.loads[0];
    const session = load && ledger.get(load.id);
    if (!load || !session) return;
    this.prewarming = true;
    this.lastPrewarm = { id: load.id, at: now, nextUseInMs: load.nextUseInMs, reloadMs: load.reloadMs, evict: load.evict };
    // Admission may evict only the plan's sessions (each predicted later than this one), none without it.
    const allowed = new Set(load.evict);
    admission
      .reload(session, (bytes, id) => admission.admit(bytes, id, { victims: allowed, reason: 'prewarm', quiet: true }), { prewarm: true })
      .then(() => {
        // Loaded with no use: its TTL counts from the end of the load.
        if (session.state === 'loaded' && session.busy === 0) session.armIdleTimer();
      })
      .catch((error: unknown) => this.parts.report.log('debug', { id: load.id, err: error }, 'pre-warm not admitted'))
      .finally(() => {
        this.prewarming = false;
      });
  }
}
