// The planner's pure decisions, by property: victims are never pinned, busy or not loaded; the order
// is the one comparator's (demand/victims.ts rankVictims: priority, then predicted reuse weighted by
// size and reload cost), which without predictions is priority, then least recently used, then larger;
// an admission that cannot fit even after every possible eviction is refused before anything is evicted.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import { compareVictims, rankVictims, scoreVictims } from '../../src/guard/demand/victims';
import {
  blockedSessions,
  type Candidate,
  decideAdmission,
  decideRelief,
  evictable,
  pickVictim,
  victimOrder,
} from '../../src/guard/planner';

const GiB = 2 ** 30;
const NOW = 10;

/** A session on the fixed TTL: no prediction (LRU order). */
const lruCandidate: fc.Arbitrary<Candidate> = fc.record({
  id: fc.string({ minLength: 1, maxLength: 4 }),
  bytes: fc.integer({ min: 1, max: 16 }).map((g) => g * GiB),
  state: fc.constantFrom('loaded', 'loaded', 'loaded', 'evicting', 'evicted', 'loading', 'removed' as const),
  busy: fc.constantFrom(0, 0, 0, 1, 2),
  pinned: fc.constantFrom(false, false, false, true),
  priority: fc.integer({ min: -1, max: 1 }),
  lastUsedAt: fc.integer({ min: 0, max: 5 }),
  nextUseInMs: fc.constant(null),
  reloadMs: fc.constantFrom(null, 500, 4000),
});
/** Adaptive sessions with a prediction, or none yet, mixed with fixed-TTL ones. */
const candidate: fc.Arbitrary<Candidate> = fc.oneof(
  lruCandidate,
  lruCandidate.chain((c) =>
    fc.record({ nextUseInMs: fc.oneof(fc.constant(null), fc.integer({ min: 0, max: 120_000 })), reloadMs: fc.constantFrom(null, 1, 500, 4000) }).map((p) => ({ ...c, ...p })),
  ),
);
const sessions = fc.array(candidate, { maxLength: 12 });
const lruSessions = fc.array(lruCandidate, { maxLength: 12 });

/** priority ascending, lastUsedAt ascending, bytes descending: "a goes no later than b". */
function noLater(a: Candidate, b: Candidate): boolean {
  if (a.priority !== b.priority) return a.priority < b.priority;
  if (a.lastUsedAt !== b.lastUsedAt) return a.lastUsedAt < b.lastUsedAt;
  return a.bytes >= b.bytes;
}

describe('victim order', () => {
  it('never picks a pinned, busy or unloaded session', () => {
    fc.assert(
      fc.property(sessions, (list) => {
        const victim = pickVictim(list, NOW);
        if (victim) expect(victim.state === 'loaded' && !victim.pinned && victim.busy === 0).toBe(true);
        else expect(list.filter(evictable)).toEqual([]);
        for (const v of victimOrder(list, NOW)) expect(evictable(v)).toBe(true);
      }),
    );
  });

  it('is the one comparator\'s order (rankVictims) over every evictable session, predictions or not', () => {
    fc.assert(
      fc.property(sessions, (list) => {
        const order = victimOrder(list, NOW);
        expect(order).toEqual(rankVictims(list, NOW).map((r) => r.candidate));
        expect(order).toHaveLength(list.filter(evictable).length);
        for (let i = 1; i < order.length; i += 1) expect(order[i - 1]!.priority).toBeLessThanOrEqual(order[i]!.priority);
        if (order.length > 0) expect(pickVictim(list, NOW)).toBe(order[0]);
      }),
    );
  });

  it('without predictions: priority, then least recently used, then larger', () => {
    fc.assert(
      fc.property(lruSessions, (list) => {
        const order = victimOrder(list, NOW);
        expect(order).toHaveLength(list.filter(evictable).length);
        for (let i = 1; i < order.length; i += 1) expect(noLater(order[i - 1]!, order[i]!)).toBe(true);
        if (order.length > 0) expect(pickVictim(list, NOW)).toBe(order[0]);
      }),
    );
  });

  it('is a consistent comparator (antisymmetric, transitive)', () => {
    fc.assert(
      fc.property(fc.array(candidate, { minLength: 3, maxLength: 6 }), (list) => {
        const ranked = scoreVictims(list, NOW);
        for (const a of ranked) {
          for (const b of ranked) {
            expect(Math.sign(compareVictims(a, b))).toBe(-Math.sign(compareVictims(b, a)) || 0);
            for (const c of ranked) if (compareVictims(a, b) <= 0 && compareVictims(b, c) <= 0) expect(compareVictims(a, c)).toBeLessThanOrEqual(0);
          }
        }
      }),
    );
  });

  it('reports exactly the busy, pinned and loading sessions as blocked', () => {
    fc.assert(
      fc.property(sessions, (list) => {
        const blocked = blockedSessions(list);
        const expected = list.filter((s) => s.state === 'loading' || (s.state === 'loaded' && (s.busy > 0 || s.pinned)));
        expect(blocked.map((b) => b.id)).toEqual(expected.map((s) => s.id));
        for (const b of blocked) expect(['busy', 'pinned', 'loading']).toContain(b.reason);
      }),
    );
  });
});

describe('admission decision', () => {
  const input = fc.record({
    sessions,
    needBytes: fc.integer({ min: 1, max: 40 }).map((g) => g * GiB),
    freeBytes: fc.integer({ min: -4, max: 24 }).map((g) => g * GiB),
    returningBytes: fc.integer({ min: 0, max: 4 }).map((g) => g * GiB),
    canWait: fc.boolean(),
    hardBytes: fc.constant(24 * GiB),
    scopeBytes: fc.integer({ min: 0, max: 30 }).map((g) => g * GiB),
    now: fc.constant(NOW),
  });

  it('admits exactly what fits now', () => {
    fc.assert(
      fc.property(input, (i) => {
        expect(decideAdmission(i).kind === 'admit').toBe(i.needBytes <= i.freeBytes);
      }),
    );
  });

  it('refuses, evicting nothing, what cannot fit even after every possible eviction', () => {
    fc.assert(
      fc.property(input, (i) => {
        // Play the decisions out: each eviction frees its victim's declared bytes.
        let free = i.freeBytes;
        let returning = i.returningBytes;
        let list = [...i.sessions];
        const evicted: string[] = [];
        for (let step = 0; step < 50; step += 1) {
          const d = decideAdmission({ ...i, freeBytes: free, returningBytes: returning, sessions: list });
          if (d.kind === 'admit') return;
          if (d.kind === 'refuse') {
            const reachable = i.freeBytes + (i.canWait ? i.returningBytes : 0) + victimOrder(i.sessions, NOW).reduce((s, v) => s + v.bytes, 0);
            if (i.needBytes > reachable || i.needBytes > i.hardBytes) expect(evicted).toEqual([]);
            return;
          }
          if (d.kind === 'wait') {
            expect(i.canWait).toBe(true);
            free += returning;
            returning = 0;
            continue;
          }
          expect(evictable(d.victim)).toBe(true);
          expect(d.victim).toBe(pickVictim(list, NOW));
          evicted.push(d.victim.id);
          free += d.victim.bytes;
          list = list.map((s) => (s === d.victim ? { ...s, state: 'evicted' as const } : s));
        }
        throw new Error('the decisions did not converge');
      }),
    );
  });

  it('refuses what is larger than the hard limit, and says so', () => {
    fc.assert(
      fc.property(input, (i) => {
        const d = decideAdmission({ ...i, needBytes: i.hardBytes + 1, freeBytes: Math.min(i.freeBytes, i.hardBytes) });
        expect(d).toEqual({ kind: 'refuse', why: 'larger than the hard limit' });
      }),
    );
  });

  it('waits for returning bytes rather than evicting when they are enough', () => {
    const idle: Candidate = { id: 'a', bytes: 8 * GiB, state: 'loaded', busy: 0, pinned: false, priority: 0, lastUsedAt: 0, nextUseInMs: null, reloadMs: null };
    const base = { now: NOW, needBytes: 4 * GiB, freeBytes: 2 * GiB, returningBytes: 3 * GiB, hardBytes: 24 * GiB, scopeBytes: 20 * GiB, sessions: [idle] };
    expect(decideAdmission({ ...base, canWait: true })).toEqual({ kind: 'wait' });
    expect(decideAdmission({ ...base, canWait: false })).toEqual({ kind: 'evict', victim: idle });
  });

  it('builds the victims (given as a function) only when the need does not fit as it is', () => {
    const idle: Candidate = { id: 'a', bytes: 8 * GiB, state: 'loaded', busy: 0, pinned: false, priority: 0, lastUsedAt: 0, nextUseInMs: null, reloadMs: null };
    let built = 0;
    const sessions = () => {
      built += 1;
      return [idle];
    };
    const base = { now: NOW, canWait: false, returningBytes: 0, hardBytes: 24 * GiB, scopeBytes: 16 * GiB, sessions };
    expect(decideAdmission({ ...base, needBytes: 4 * GiB, freeBytes: 8 * GiB })).toEqual({ kind: 'admit' });
    expect(built).toBe(0);
    expect(decideAdmission({ ...base, needBytes: 12 * GiB, freeBytes: 8 * GiB })).toEqual({ kind: 'evict', victim: idle });
    expect(built).toBe(1);
  });
});

describe('relief decision', () => {
  it('evicts the first victim until usage is at the target, and says when nothing is left', () => {
    fc.assert(
      fc.property(sessions, fc.integer({ min: 0, max: 30 }), (list, usageGiB) => {
        const d = decideRelief(usageGiB * GiB, 10 * GiB, list, NOW);
        if (usageGiB <= 10) expect(d).toEqual({ kind: 'done' });
        else if (list.some(evictable)) expect(d).toEqual({ kind: 'evict', victim: pickVictim(list, NOW) });
        else expect(d).toEqual({ kind: 'stuck' });
      }),
    );
  });
});
