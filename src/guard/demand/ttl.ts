// The adaptive idle TTL: how long an idle session stays loaded after its last use ended. It follows
// the predicted wait for the next use (the gaps' mean residual life, gaps.ts): the session is kept
// until that wait first exceeds a horizon, the TTL's max shrunk while the GPU is under pressure and
// stretched while it is idle, and is always within { min, max }. Without a trusted history the fixed
// TTL stays. Pure.
import { InvalidOptionError } from '../../errors';
import type { DemandEstimate } from './session-demand';

export interface TtlBounds {
  minMs: number;
  maxMs: number;
}

export interface TtlPolicy {
  /** Factor when the GPU is idle (usage at or below `idleBelow` of soft). Default 2. */
  idleFactor?: number;
  /** Factor at or above the soft limit. Default 0.5. */
  pressureFactor?: number;
  /** Usage/soft ratio at or below which the GPU counts as idle. Default 0.5. */
  idleBelow?: number;
}

export interface TtlInput {
  estimate: Pick<DemandEstimate, 'hasHistory' | 'nextUseInMs' | 'ratePerMinute'> & {
    /** How long the pattern has been watched; shorter than the fixed TTL, the fixed TTL stays (absent: trusted). */
    historyMs?: number;
  };
  /**
   * The idle time (from the end of the last use) at which the predicted wait for the next use (the
   * gaps' mean residual life) first exceeds horizonMs; null without recorded gaps. Absent: no prediction.
   */
  idleUntilWaitExceeds?: (horizonMs: number) => number | null;
  bounds: TtlBounds;
  /** The fixed TTL that applies without history (null: never expires, bounded here by max). */
  fallbackMs: number | null;
  /** Scope usage over the soft limit (0 = empty, 1 = at soft). */
  usageRatio: number;
  policy?: TtlPolicy;
}

/** The reasoning behind one TTL, as status() shows it. */
export interface TtlDecision {
  ttlMs: number;
  basis: 'prediction' | 'fallback';
  /** Before the bounds: the idle time until the predicted wait exceeds the horizon (the fixed TTL without a prediction). */
  baseMs: number;
  /** The wait beyond which the session is not kept: max times the factor; null without a prediction. */
  horizonMs: number | null;
  factor: number;
  clamped: 'min' | 'max' | null;
  ratePerMinute: number | null;
  predictedNextUseInMs: number | null;
}

export function validateTtlBounds(min: number, max: number, option = 'keepAlive.idleTtl'): TtlBounds {
  if (!Number.isFinite(min) || min <= 0) throw new InvalidOptionError(`${option}.min`, `must be more than 0 ms, got ${String(min)}`);
  if (!Number.isFinite(max) || max < min) {
    throw new InvalidOptionError(`${option}.max`, `(${String(max)} ms) must be at least min (${min} ms)`);
  }
  return { minMs: min, maxMs: max };
}

/** The pressure factor: idleFactor up to idleBelow, pressureFactor from 1, linear between. */
export function pressureFactor(usageRatio: number, policy: TtlPolicy = {}): number {
  const idle = policy.idleFactor ?? 2;
  const pressed = policy.pressureFactor ?? 0.5;
  const idleBelow = policy.idleBelow ?? 0.5;
  const u = Number.isFinite(usageRatio) ? usageRatio : 1;
  if (u <= idleBelow) return idle;
  if (u >= 1) return pressed;
  return idle + ((u - idleBelow) / (1 - idleBelow)) * (pressed - idle);
}

export function adaptiveIdleTtl(input: TtlInput): TtlDecision {
  const { estimate, bounds } = input;
  const factor = pressureFactor(input.usageRatio, input.policy);
  // A pattern watched for less time than the fixed TTL it would replace is not trusted yet: one burst
  // says nothing of the pause before the next.
  const watched = estimate.historyMs === undefined || input.fallbackMs === null || estimate.historyMs >= input.fallbackMs;
  // The horizon: the TTL's ceiling (the longest the operator keeps an idle session for a possible
  // reuse), shorter under pressure, longer while the GPU is idle. The session is kept while its next
  // use is expected within it, i.e. until its predicted wait first exceeds it: a session due back in
  // minutes stays through its pause, one due back later than the horizon (or whose idle time alone now
  // predicts that: its pattern broke) goes at min.
  const horizonMs = bounds.maxMs * factor;
  const until = estimate.hasHistory && watched && Number.isFinite(horizonMs) ? (input.idleUntilWaitExceeds?.(Math.max(0, horizonMs)) ?? null) : null;
  const predicted = until !== null && Number.isFinite(until);
  // Without history the fixed TTL is kept as is: no pressure factor on a guess.
  const baseMs = predicted ? until : (input.fallbackMs ?? bounds.maxMs);
  let ttlMs = Number.isFinite(baseMs) ? Math.max(0, baseMs) : bounds.maxMs;
  let clamped: TtlDecision['clamped'] = null;
  if (ttlMs < bounds.minMs) {
    ttlMs = bounds.minMs;
    clamped = 'min';
  } else if (ttlMs >= bounds.maxMs) {
    ttlMs = bounds.maxMs;
    clamped = 'max';
  }
  return {
    ttlMs,
    basis: predicted ? 'prediction' : 'fallback',
    baseMs,
    horizonMs: predicted ? horizonMs : null,
    factor: predicted ? factor : 1,
    clamped,
    ratePerMinute: estimate.ratePerMinute,
    predictedNextUseInMs: estimate.nextUseInMs,
  };
}
