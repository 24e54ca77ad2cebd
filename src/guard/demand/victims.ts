// The victim order under pressure, by predicted reuse. Among the evictable (loaded, never pinned, never
// busy), lower priority goes first as before; within a priority the victim is the session whose next
// use is predicted furthest away, weighted by its size (more bytes freed) and against its reload cost
// (the measured time its last load took): score = ms to next use × bytes/mean bytes × mean reload/reload.
// A session without history scores its idle time, which is least-recently-used order. Pure.

export interface VictimCandidate {
  id: string;
  bytes: number;
  priority: number;
  pinned: boolean;
  busy: number;
  /** Only 'loaded' sessions can be evicted; absent counts as loaded. */
  state?: string;
  /** End of the last use (the clock's ms). */
  lastUsedAt: number;
  /** Predicted ms to the next use; null without history. */
  nextUseInMs: number | null;
  /** How long its last load took, ms; null when never measured. */
  reloadMs: number | null;
}

export interface RankedVictim<C extends VictimCandidate = VictimCandidate> {
  candidate: C;
  /** Higher goes first within a priority. */
  score: number;
  basis: 'reuse' | 'lru';
}

/** A reload this short or unmeasured weighs as if it took this long, so no weight is infinite. */
const MIN_RELOAD_MS = 1;

export function evictable(c: Pick<VictimCandidate, 'state' | 'pinned' | 'busy'>): boolean {
  return (c.state === undefined || c.state === 'loaded') && !c.pinned && c.busy === 0;
}

/** The one comparator: priority ascending, score descending, then larger, then older use, then id. */
export function compareVictims(a: RankedVictim, b: RankedVictim): number {
  return (
    a.candidate.priority - b.candidate.priority ||
    b.score - a.score ||
    b.candidate.bytes - a.candidate.bytes ||
    a.candidate.lastUsedAt - b.candidate.lastUsedAt ||
    (a.candidate.id < b.candidate.id ? -1 : a.candidate.id > b.candidate.id ? 1 : 0)
  );
}

/** Scores every evictable candidate; the weights are relative to the evictable set's means. */
export function scoreVictims<C extends VictimCandidate>(candidates: readonly C[], now: number): Array<RankedVictim<C>> {
  const pool = candidates.filter(evictable);
  if (pool.length === 0) return [];
  const meanBytes = pool.reduce((s, c) => s + c.bytes, 0) / pool.length || 1;
  const measured = pool.filter((c) => c.reloadMs !== null);
  const meanReload = measured.length === 0 ? 1 : measured.reduce((s, c) => s + Math.max(MIN_RELOAD_MS, c.reloadMs!), 0) / measured.length;
  return pool.map((c) => {
    if (c.nextUseInMs === null || !Number.isFinite(c.nextUseInMs)) {
      return { candidate: c, score: Math.max(0, now - c.lastUsedAt), basis: 'lru' as const };
    }
    const sizeWeight = c.bytes / meanBytes;
    const reloadWeight = c.reloadMs === null ? 1 : meanReload / Math.max(MIN_RELOAD_MS, c.reloadMs);
    return { candidate: c, score: Math.max(0, c.nextUseInMs) * sizeWeight * reloadWeight, basis: 'reuse' as const };
  });
}

/** Evictable candidates, first victim first. */
export function rankVictims<C extends VictimCandidate>(candidates: readonly C[], now: number): Array<RankedVictim<C>> {
  return scoreVictims(candidates, now).sort(compareVictims);
}

/** The next victim, or undefined when nothing is evictable. */
export function pickVictim<C extends VictimCandidate>(candidates: readonly C[], now: number): C | undefined {
  let best: RankedVictim<C> | undefined;
  for (const r of scoreVictims(candidates, now)) if (!best || compareVictims(r, best) < 0) best = r;
  return best?.candidate;
}
