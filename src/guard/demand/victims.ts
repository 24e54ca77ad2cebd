// The victim order under pressure, by predicted reuse. Among the evictable (loaded, never pinned, never
// busy), lower priority goes first as before; within a priority the victim is the session whose next
// use is predicted furthest away, weighted by its size (more bytes freed) and against its reload cost
// (the measured time its last load took): score = ms to next use × bytes/mean bytes × mean reload/reload.
// A session without history scores its idle time, which is least-recently-used order. A parent (a model
// whose contexts depend on it) goes with its children: it is evictable only while none of them is busy,
// pinned or loading, and it weighs its family's bytes. Pure.

/** What the family rules need of a session and of each of its dependents. */
export interface FamilyMember {
  bytes: number;
  pinned: boolean;
  busy: number;
  /** Absent counts as loaded. */
  state?: string;
  /** Sessions that depend on this one (a model's contexts): evicting it evicts them first. */
  children?: readonly FamilyMember[];
}

export interface VictimCandidate extends FamilyMember {
  id: string;
  bytes: number;
  priority: number;
  pinned: boolean;
  busy: number;
  /** Only 'loaded' sessions can be evicted; absent counts as loaded. */
  state?: string;
  /** End of the last use (the clock's ms). */
  lastUsedAt: number;
  /** Predicted ms to the next use (its gaps' mean residual life at its idle time); null without history. */
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

/** Never pinned, never busy, only loaded; a parent only while no dependent holds it (familyBlock). */
export function evictable(c: FamilyMember): boolean {
  return (c.state === undefined || c.state === 'loaded') && !c.pinned && c.busy === 0 && familyBlock(c) === null;
}

/** Why a parent cannot go with its children now: a child (or a child's child) busy, pinned or loading. */
export function familyBlock(c: FamilyMember): 'busy' | 'pinned' | 'loading' | null {
  for (const child of c.children ?? []) {
    if (child.state === 'loading') return 'loading';
    if ((child.state === undefined || child.state === 'loaded') && child.busy > 0) return 'busy';
    if ((child.state === undefined || child.state === 'loaded') && child.pinned) return 'pinned';
    const below = familyBlock(child);
    if (below !== null) return below;
  }
  return null;
}

/** What evicting `c` frees by the declared accounts: its bytes and its resident dependents'. */
export function familyBytes(c: FamilyMember): number {
  let bytes = c.bytes;
  for (const child of c.children ?? []) {
    if (child.state === undefined || child.state === 'loaded' || child.state === 'evicting') bytes += familyBytes(child);
  }
  return bytes;
}

/** The one comparator: priority ascending, score descending, then larger (a family's bytes), then older use, then id. */
export function compareVictims(a: RankedVictim, b: RankedVictim): number {
  return (
    a.candidate.priority - b.candidate.priority ||
    b.score - a.score ||
    familyBytes(b.candidate) - familyBytes(a.candidate) ||
    a.candidate.lastUsedAt - b.candidate.lastUsedAt ||
    (a.candidate.id < b.candidate.id ? -1 : a.candidate.id > b.candidate.id ? 1 : 0)
  );
}

/** Scores every evictable candidate; the weights are relative to the evictable set's means. */
export function scoreVictims<C extends VictimCandidate>(candidates: readonly C[], now: number): Array<RankedVictim<C>> {
  const pool = candidates.filter(evictable);
  if (pool.length === 0) return [];
  const meanBytes = pool.reduce((s, c) => s + familyBytes(c), 0) / pool.length || 1;
  const measured = pool.filter((c) => c.reloadMs !== null);
  const meanReload = measured.length === 0 ? 1 : measured.reduce((s, c) => s + Math.max(MIN_RELOAD_MS, c.reloadMs!), 0) / measured.length;
  return pool.map((c) => {
    if (c.nextUseInMs === null || !Number.isFinite(c.nextUseInMs)) {
      return { candidate: c, score: Math.max(0, now - c.lastUsedAt), basis: 'lru' as const };
    }
    const sizeWeight = familyBytes(c) / meanBytes;
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
