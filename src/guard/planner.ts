// The planner: pure decisions, no I/O, no clock. Which session goes first, which cannot go, and what
// an admission does next: admit, wait for disposed memory to come back, evict one more, or refuse.
// The guard's other parts carry the decisions out.
import type { EvictionReport } from '../errors';
import type { SessionState } from './sessions';

/** What the planner knows of a session. */
export interface Candidate {
  readonly id: string;
  readonly bytes: number;
  readonly state: SessionState;
  readonly busy: number;
  readonly pinned: boolean;
  readonly priority: number;
  readonly lastUsedAt: number;
}

/** Never pinned, never busy, only loaded sessions. */
export function evictable(s: Candidate): boolean {
  return s.state === 'loaded' && !s.pinned && s.busy === 0;
}

/**
 * The victim order, in one place: negative when `a` goes before `b`. Lower priority first, then least
 * recently used, then larger. (A further key, e.g. predicted reuse, belongs here.)
 */
export function compareVictims(a: Candidate, b: Candidate): number {
  if (a.priority !== b.priority) return a.priority - b.priority;
  if (a.lastUsedAt !== b.lastUsedAt) return a.lastUsedAt - b.lastUsedAt;
  return b.bytes - a.bytes;
}

/** The evictable sessions, first victim first. */
export function victimOrder<T extends Candidate>(sessions: Iterable<T>): T[] {
  return [...sessions].filter(evictable).sort(compareVictims);
}

/** The first victim, or undefined when nothing can be evicted. Ties keep registration order. */
export function pickVictim<T extends Candidate>(sessions: Iterable<T>): T | undefined {
  let best: T | undefined;
  for (const s of sessions) if (evictable(s) && (!best || compareVictims(s, best) < 0)) best = s;
  return best;
}

/** Sessions eviction cannot free now, and why. */
export function blockedSessions(sessions: Iterable<Candidate>): EvictionReport['blocked'] {
  const blocked: EvictionReport['blocked'] = [];
  for (const s of sessions) {
    if (s.state === 'loading') blocked.push({ id: s.id, bytes: s.bytes, reason: 'loading' });
    else if (s.state === 'loaded' && s.busy > 0) blocked.push({ id: s.id, bytes: s.bytes, reason: 'busy' });
    else if (s.state === 'loaded' && s.pinned) blocked.push({ id: s.id, bytes: s.bytes, reason: 'pinned' });
  }
  return blocked;
}

export interface AdmissionInput<T extends Candidate> {
  needBytes: number;
  /** What an admission could get now (Ledger.free). */
  freeBytes: number;
  /** Disposed bytes NVML does not show as returned yet. */
  returningBytes: number;
  /** A monitor will bring a fresh reading (waiting for returns makes sense). */
  canWait: boolean;
  hardBytes: number;
  scopeBytes: number;
  sessions: readonly T[];
}

export type AdmissionDecision<T extends Candidate> =
  | { kind: 'admit' }
  | { kind: 'wait' }
  | { kind: 'evict'; victim: T }
  | { kind: 'refuse'; why: string };

/**
 * The next step of an admission. Refuses before evicting anything when the load cannot fit even if
 * every evictable session went (declared bytes) and every pending return came back.
 */
export function decideAdmission<T extends Candidate>(input: AdmissionInput<T>): AdmissionDecision<T> {
  const { needBytes: need, freeBytes: free } = input;
  if (need <= free) return { kind: 'admit' };
  if (need > input.hardBytes) return { kind: 'refuse', why: 'larger than the hard limit' };
  const victims = victimOrder(input.sessions);
  let evictableBytes = 0;
  for (const v of victims) evictableBytes += v.bytes;
  const returning = input.canWait ? input.returningBytes : 0;
  if (need > free + returning + evictableBytes) {
    if (input.scopeBytes > input.hardBytes && victims.length === 0) return { kind: 'refuse', why: 'over the hard limit' };
    return {
      kind: 'refuse',
      why: victims.length === 0 ? 'does not fit' : 'does not fit even after evicting every idle session',
    };
  }
  // Disposes already made will make room once NVML shows their memory back: wait rather than evict
  // more on a lagging reading (bounded: unseen returns expire).
  if (returning > 0 && need <= free + returning) return { kind: 'wait' };
  const victim = victims[0];
  if (!victim) return { kind: 'refuse', why: input.scopeBytes > input.hardBytes ? 'over the hard limit' : 'does not fit' };
  return { kind: 'evict', victim };
}

export type ReliefDecision<T extends Candidate> = { kind: 'done' } | { kind: 'evict'; victim: T } | { kind: 'stuck' };

/** The next eviction of a relief: until usage is at or under the target. */
export function decideRelief<T extends Candidate>(usageBytes: number, targetBytes: number, sessions: Iterable<T>): ReliefDecision<T> {
  if (usageBytes <= targetBytes) return { kind: 'done' };
  const victim = pickVictim(sessions);
  return victim ? { kind: 'evict', victim } : { kind: 'stuck' };
}
