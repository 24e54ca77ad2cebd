// Victim order by predicted reuse and the pre-warm decision, on worked examples.
import { describe, expect, it } from 'vitest';

import { planPrewarm } from '../../src/guard/demand/prewarm';
import { pickVictim, rankVictims, type VictimCandidate } from '../../src/guard/demand/victims';

const GiB = 2 ** 30;
const NOW = 10_000_000;
const s = (id: string, extra: Partial<VictimCandidate> = {}): VictimCandidate => ({
  id,
  bytes: 4 * GiB,
  priority: 0,
  pinned: false,
  busy: 0,
  lastUsedAt: NOW - 60_000,
  nextUseInMs: null,
  reloadMs: null,
  ...extra,
});

describe('victims by predicted reuse', () => {
  it('the 40 s model stays, the hourly one goes, though the hourly one was used more recently', () => {
    const every40s = s('chat', { lastUsedAt: NOW - 35_000, nextUseInMs: 5_000 });
    const hourly = s('report', { lastUsedAt: NOW - 1_000, nextUseInMs: 3_599_000 });
    expect(pickVictim([every40s, hourly], NOW)?.id).toBe('report');
  });

  it('weights by size and against reload cost', () => {
    // Same predicted reuse: the bigger one frees more; the slow-to-reload one is kept.
    expect(pickVictim([s('small', { bytes: GiB, nextUseInMs: 60_000 }), s('big', { bytes: 8 * GiB, nextUseInMs: 60_000 })], NOW)?.id).toBe('big');
    const slow = s('slow', { nextUseInMs: 100_000, reloadMs: 30_000 });
    const fast = s('fast', { nextUseInMs: 50_000, reloadMs: 1_000 });
    expect(rankVictims([slow, fast], NOW).map((r) => r.candidate.id)).toEqual(['fast', 'slow']);
  });

  it('lower priority first, never pinned or busy or not loaded; LRU without history', () => {
    const ranked = rankVictims(
      [
        s('pinned', { pinned: true, nextUseInMs: 1e9 }),
        s('busy', { busy: 1, nextUseInMs: 1e9 }),
        s('loading', { state: 'loading' }),
        s('important', { priority: 5, lastUsedAt: NOW - 1e6 }),
        s('newer', { lastUsedAt: NOW - 10_000 }),
        s('older', { lastUsedAt: NOW - 20_000 }),
      ],
      NOW,
    );
    expect(ranked.map((r) => [r.candidate.id, r.basis])).toEqual([
      ['older', 'lru'],
      ['newer', 'lru'],
      ['important', 'lru'],
    ]);
    expect(pickVictim([s('p', { pinned: true })], NOW)).toBeUndefined();
  });
});

describe('planPrewarm', () => {
  const candidate = { id: 'next', bytes: 4 * GiB, priority: 0, uses: 10, nextUseInMs: 3_000, reloadMs: 5_000 };

  it('loads a session due within its reload time into free room', () => {
    const plan = planPrewarm({ now: NOW, roomBytes: 6 * GiB, candidates: [candidate], residents: [], leadMs: 1000 });
    expect(plan.loads).toEqual([{ id: 'next', bytes: 4 * GiB, nextUseInMs: 3_000, reloadMs: 5_000, evict: [] }]);
  });

  it('waits when not due, with few uses, or without a reload time', () => {
    const plan = planPrewarm({
      now: NOW,
      roomBytes: 100 * GiB,
      candidates: [
        { ...candidate, id: 'later', nextUseInMs: 60_000 },
        { ...candidate, id: 'new', uses: 2 },
        { ...candidate, id: 'unmeasured', reloadMs: null },
      ],
      residents: [],
      leadMs: 1000,
    });
    expect(plan.loads).toEqual([]);
    expect(plan.skipped).toEqual([
      { id: 'later', reason: 'not-due' },
      { id: 'new', reason: 'few-uses' },
      { id: 'unmeasured', reason: 'no-reload-time' },
    ]);
  });

  it('without room: evicts only sessions predicted later, and only when allowed', () => {
    const residents = [s('sooner', { nextUseInMs: 1_000 }), s('much-later', { nextUseInMs: 900_000 })];
    expect(planPrewarm({ now: NOW, roomBytes: GiB, candidates: [candidate], residents, leadMs: 1000 }).skipped).toEqual([{ id: 'next', reason: 'no-room' }]);
    const allowed = planPrewarm({ now: NOW, roomBytes: GiB, candidates: [candidate], residents, leadMs: 1000, allowEviction: true });
    expect(allowed.loads[0]?.evict).toEqual(['much-later']);
    const onlySooner = planPrewarm({ now: NOW, roomBytes: GiB, candidates: [candidate], residents: [residents[0]!], leadMs: 1000, allowEviction: true });
    expect(onlySooner.loads).toEqual([]);
  });
});
