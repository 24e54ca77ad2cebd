// The planner: pure decisions, no I/O, no clock. Which session goes first, which cannot go, and what
// an admission does next: admit, wait for disposed memory to come back, evict one more, or refuse.
// The guard's other parts carry the decisions out.
import type { EvictionReport } from '../errors';
import { familyBlock, pickVictim as pickByReuse, rankVictims, type VictimCandidate } from './demand/victims';
import type { SessionState } from './sessions';

/**
 * What the planner knows of a session: its fields, its predicted next use (null without history, or on
 * the fixed TTL: least-recently-used order) and the measured time of its last load.
 */
export interface Candidate extends VictimCandidate {
  readonly state: SessionState;
}

/**
 * The evictable ones: never pinned, never busy, only loaded, a parent only while no child holds it; and
 * what a parent's eviction frees (demand/victims.ts, the one definition of each).
 */
export { evictable, familyBlock, familyBytes } from './demand/victims';

/**
 * The victim order, in one place (demand/victims.ts compareVictims): lower priority first; within a
 * priority the next use predicted furthest away, weighted by size (a parent's family's) and reload
 * cost; without a prediction least recently used; then larger. A child's use stamps its parent too, so
 * an idle context goes before the model it belongs to.
 */
export function victimOrder<T extends Candidate>(sessions: readonly T[], now: number): T[] {
  return rankVictims(sessions, now).map((r) => r.candidate);
}

/** The first victim, or undefined when nothing can be evicted. */
export function pickVictim<T extends Candidate>(sessions: readonly T[], now: number): T | undefined {
  return pickByReuse(sessions, now);
}

/** Sessions eviction cannot free now, and why. */
export function blockedSessions(sessions: Iterable<Pick<Candidate, 'id' | 'bytes' | 'state' | 'busy' | 'pinned' | 'children'>>): EvictionReport['blocked'] {
  const blocked: EvictionReport['blocked'] = [];
  for (const s of sessions) {
    if (s.state === 'loading') blocked.push({ id: s.id, bytes: s.bytes, reason: 'loading' });
    else if (s.state === 'loaded' && s.busy > 0) blocked.push({ id: s.id, bytes: s.bytes, reason: 'busy' });
    else if (s.state === 'loaded' && s.pinned) blocked.push({ id: s.id, bytes: s.bytes, reason: 'pinned' });
    else if (s.state === 'loaded') {
      const block = familyBlock(s);
      if (block !== null) blocked.push({ id: s.id, bytes: s.bytes, reason: block === 'busy' ? 'child busy' : block === 'pinned' ? 'child pinned' : 'child loading' });
    }
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
  /**
   * The sessions admission may evict (views with their predictions), or a function that builds them:
   * called only when the need does not fit as it is (most admissions never look at a victim).
   */
  sessions: readonly T[] | (() => readonly T[]);
  /** The clock's time (idle times for the order). */
  now: number;
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
  const victims = victimOrder(typeof input.sessions === 'function' ? input.sessions() : input.sessions, input.now);
  const evictableBytes = sumBytes(victims);
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
export function decideRelief<T extends Candidate>(usageBytes: number, targetBytes: number, sessions: readonly T[], now: number): ReliefDecision<T> {
  if (usageBytes <= targetBytes) return { kind: 'done' };
  const victim = pickVictim(sessions, now);
  return victim ? { kind: 'evict', victim } : { kind: 'stuck' };
}

/** Declared bytes of a set of victims, each session once (a parent's evictable children are in the set too). */
function sumBytes(victims: readonly Candidate[]): number {
  let bytes = 0;
  for (const v of victims) bytes += v.bytes;
  return bytes;
}

export interface GrowthInput<T extends Candidate> {
  /** The session that grows and its ancestors (left out of what evictions could free). */
  familyIds: ReadonlySet<string>;
  growthBytes: number;
  /** Free memory once the growth is on the books (negative: this many bytes short). */
  freeAfterBytes: number;
  /** Scope usage once the growth is on the books. */
  usageAfterBytes: number;
  softBytes: number;
  hardBytes: number;
  sessions: readonly T[];
  now: number;
}

export type GrowthDecision = { kind: 'accept' } | { kind: 'relieve' } | { kind: 'refuse'; why: string };

/**
 * A session's memory grows after its admission (a commit above its reservation, a resize): accept it
 * when it fits under the soft limit; accept and relieve (releasers, then idle evictions) when it fits
 * under the hard limit or would once the idle sessions went; refuse when even that is not enough.
 */
export function decideGrowth<T extends Candidate>(input: GrowthInput<T>): GrowthDecision {
  if (input.growthBytes > input.hardBytes) return { kind: 'refuse', why: 'larger than the hard limit' };
  if (input.freeAfterBytes >= 0) return { kind: input.usageAfterBytes > input.softBytes ? 'relieve' : 'accept' };
  const victims = victimOrder(input.sessions, input.now).filter((v) => !input.familyIds.has(v.id));
  if (-input.freeAfterBytes <= sumBytes(victims)) return { kind: 'relieve' };
  return { kind: 'refuse', why: victims.length === 0 ? 'does not fit' : 'does not fit even after evicting every idle session' };
}
