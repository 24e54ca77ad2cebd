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
  /** Sessions that depend on this one (a model's contexts): evicting it evicts them first. */
  readonly children?: readonly Candidate[];
}

/** Never pinned, never busy, only loaded sessions; a parent only while no child holds it (see familyBlock). */
export function evictable(s: Candidate): boolean {
  return s.state === 'loaded' && !s.pinned && s.busy === 0 && familyBlock(s) === null;
}

/**
 * Why a parent cannot go with its children now: a child (or a child's child) busy, pinned or loading.
 * null when every dependent may be disposed with it.
 */
export function familyBlock(s: Candidate): 'busy' | 'pinned' | 'loading' | null {
  for (const c of s.children ?? []) {
    if (c.state === 'loading') return 'loading';
    if (c.state === 'loaded' && c.busy > 0) return 'busy';
    if (c.state === 'loaded' && c.pinned) return 'pinned';
    const below = familyBlock(c);
    if (below !== null) return below;
  }
  return null;
}

/** What evicting `s` frees by the declared accounts: its bytes and its resident dependents'. */
export function familyBytes(s: Candidate): number {
  let bytes = s.bytes;
  for (const c of s.children ?? []) if (c.state === 'loaded' || c.state === 'evicting') bytes += familyBytes(c);
  return bytes;
}

/**
 * The victim order, in one place: negative when `a` goes before `b`. Lower priority first, then least
 * recently used, then larger (a parent by its family's bytes: it takes its children with it). A
 * child's use stamps its parent too, so an idle context goes before the model it belongs to. (A
 * further key, e.g. predicted reuse, belongs here.)
 */
export function compareVictims(a: Candidate, b: Candidate): number {
  if (a.priority !== b.priority) return a.priority - b.priority;
  if (a.lastUsedAt !== b.lastUsedAt) return a.lastUsedAt - b.lastUsedAt;
  return familyBytes(b) - familyBytes(a);
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
export function decideRelief<T extends Candidate>(usageBytes: number, targetBytes: number, sessions: Iterable<T>): ReliefDecision<T> {
  if (usageBytes <= targetBytes) return { kind: 'done' };
  const victim = pickVictim(sessions);
  return victim ? { kind: 'evict', victim } : { kind: 'stuck' };
}

/** Declared bytes of a set of victims, each session once (a parent's evictable children are in the set too). */
function sumBytes(victims: readonly Candidate[]): number {
  let bytes = 0;
  for (const v of victims) bytes += v.bytes;
  return bytes;
}

export interface GrowthInput<T extends Candidate> {
  /** The session that grows (its family is left out of what evictions could free). */
  session: T | undefined;
  growthBytes: number;
  /** Free memory once the growth is on the books (negative: this many bytes short). */
  freeAfterBytes: number;
  /** Scope usage once the growth is on the books. */
  usageAfterBytes: number;
  softBytes: number;
  hardBytes: number;
  sessions: readonly T[];
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
  const family = new Set<Candidate>();
  for (let s: Candidate | undefined = input.session; s; s = parentOf(s, input.sessions)) family.add(s);
  const victims = victimOrder(input.sessions).filter((v) => !family.has(v));
  if (-input.freeAfterBytes <= sumBytes(victims)) return { kind: 'relieve' };
  return { kind: 'refuse', why: victims.length === 0 ? 'does not fit' : 'does not fit even after evicting every idle session' };
}

function parentOf<T extends Candidate>(s: Candidate, sessions: readonly T[]): T | undefined {
  return sessions.find((p) => p.children?.includes(s));
}
