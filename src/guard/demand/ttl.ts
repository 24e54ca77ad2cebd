// The adaptive idle TTL: how long an idle session stays loaded after its last use ended. It follows
// the predicted gap to the next use plus a margin for its variation (or the usual pause between bursts,
// when longer), is stretched while the GPU is idle and shrunk while it is under pressure, and is always
// within { min, max }. Pure.
import { InvalidOptionError } from '../../errors';
import type { DemandEstimate } from './session-demand';

export interface TtlBounds {
  minMs: number;
  maxMs: number;
}

export interface TtlPolicy {
  /** Deviations added to the mean gap (as TCP's RTO = SRTT + 4 RTTVAR). Default 4. */
  deviations?: number;
  /** Factor when the GPU is idle (usage at or below `idleBelow` of soft). Default 2. */
  idleFactor?: number;
  /** Factor at or above the soft limit. Default 0.5. */
  pressureFactor?: number;
  /** Usage/soft ratio at or below which the GPU counts as idle. Default 0.5. */
  idleBelow?: number;
}

export interface TtlInput {
  estimate: Pick<DemandEstimate, 'hasHistory' | 'gapMs' | 'gapDevMs' | 'nextUseInMs' | 'ratePerMinute'> & {
    pauseMs?: number | null;
    /** How long the pattern has been watched; shorter than the fixed TTL, the fixed TTL stays (absent: trusted). */
    historyMs?: number;
  };
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
  /** Before the pressure factor and the bounds. */
  baseMs: number;
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
  const predicted = estimate.hasHistory && estimate.gapMs !== null && watched;
  // A bursty session pauses longer than its gaps vary: it is kept through its usual pause.
  const baseMs = predicted
    ? Math.max(estimate.gapMs! + (input.policy?.deviations ?? 4) * (estimate.gapDevMs ?? 0), estimate.pauseMs ?? -Infinity)
    : (input.fallbackMs ?? bounds.maxMs);
  // Without history the fixed TTL is kept as is: no pressure factor on a guess.
  const raw = predicted ? baseMs * factor : baseMs;
  let ttlMs = Number.isFinite(raw) ? raw : bounds.maxMs;
  let clamped: TtlDecision['clamped'] = null;
  if (ttlMs < bounds.minMs) {
    ttlMs = bounds.minMs;
    clamped = 'min';
  } else if (ttlMs > bounds.maxMs) {
    ttlMs = bounds.maxMs;
    clamped = 'max';
  }
  return {
    ttlMs,
    basis: predicted ? 'prediction' : 'fallback',
    baseMs,
    factor: predicted ? factor : 1,
    clamped,
    ratePerMinute: estimate.ratePerMinute,
    predictedNextUseInMs: estimate.nextUseInMs,
  };
}
