// What one adaptive session carries: its demand model, its TTL bounds, and the TTL decision in force
// (kept so status() shows the reasoning without deciding anything). decide() changes the decision;
// info() and view() are pure reads.
import { type DemandEstimate, SessionDemand } from './session-demand';
import type { GapHistogram } from './gaps';
import { adaptiveIdleTtl, type TtlBounds, type TtlDecision } from './ttl';

/** status().sessions[i].keepAlive */
export interface SessionKeepAliveInfo {
  adaptive: boolean;
  ratePerMinute: number | null;
  /** EWMA of the gap between use starts. */
  gapMs: number | null;
  /** Gaps in the histogram the prediction comes from (decayed). */
  gapsRecorded: number | null;
  /** Expected wait for the next use given the idle time so far (the gaps' mean residual life). */
  predictedNextUseInMs: number | null;
  /** The idle TTL in force (from the end of the last use); null: never expires. */
  ttlMs: number | null;
  /** 'prediction' (adaptive, from the history), 'fallback' (adaptive, no history yet: the fixed TTL), 'fixed'. */
  ttlBasis: TtlDecision['basis'] | 'fixed';
  /** The pressure factor applied (1 without a prediction). */
  factor: number | null;
  /** Kept while the predicted wait is within this (max times the factor); null without a prediction. */
  horizonMs: number | null;
  clamped: TtlDecision['clamped'];
  /** How long its last load through the guard took, ms. */
  lastLoadMs: number | null;
  windowUses: number | null;
}

export class SessionKeepAlive {
  readonly demand: SessionDemand;
  private decision: TtlDecision | null = null;

  constructor(
    readonly bounds: TtlBounds,
    options: { alpha: number; bucketMs: number; buckets: number; halfLifeMs?: number; pool?: GapHistogram | null },
    /** The fixed TTL without history (null: bounded by max). */
    readonly fallbackMs: number | null,
  ) {
    this.demand = new SessionDemand(options);
  }

  /** Decides the TTL at `now` under `usageRatio` (scope usage over soft) and keeps it. */
  decide(now: number, usageRatio: number): TtlDecision {
    this.decision = adaptiveIdleTtl({
      estimate: this.demand.estimate(now),
      idleUntilWaitExceeds: (horizonMs) => this.demand.idleUntilWaitExceeds(horizonMs, this.bounds.maxMs, now),
      bounds: this.bounds,
      fallbackMs: this.fallbackMs,
      usageRatio,
    });
    return this.decision;
  }

  get ttlMs(): number | null {
    return this.decision?.ttlMs ?? null;
  }

  estimate(now: number): DemandEstimate {
    return this.demand.estimate(now);
  }

  info(now: number): SessionKeepAliveInfo {
    const e = this.demand.estimate(now);
    const d = this.decision;
    return {
      adaptive: true,
      ratePerMinute: e.ratePerMinute,
      gapMs: e.gapMs,
      gapsRecorded: e.gapsRecorded,
      predictedNextUseInMs: e.nextUseInMs,
      ttlMs: d?.ttlMs ?? null,
      ttlBasis: d?.basis ?? 'fallback',
      factor: d?.factor ?? null,
      horizonMs: d?.horizonMs ?? null,
      clamped: d?.clamped ?? null,
      lastLoadMs: e.lastLoadMs,
      windowUses: e.windowUses,
    };
  }
}

/** The info of a session on the fixed TTL. */
export function fixedKeepAliveInfo(idleTtlMs: number | null): SessionKeepAliveInfo {
  return {
    adaptive: false,
    ratePerMinute: null,
    gapMs: null,
    gapsRecorded: null,
    predictedNextUseInMs: null,
    ttlMs: idleTtlMs,
    ttlBasis: 'fixed',
    factor: null,
    horizonMs: null,
    clamped: null,
    lastLoadMs: null,
    windowUses: null,
  };
}
