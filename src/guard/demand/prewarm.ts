// Pre-warming: load an evicted session ahead of its predicted next use when that use is closer than
// its reload takes. It goes through admission like any load and only into room there is; with
// allowEviction, it may also evict sessions whose next use is predicted strictly later than its own
// (and of no higher priority), never one predicted sooner, never one without history. Pure.
import { rankVictims, type VictimCandidate } from './victims';

export interface PrewarmCandidate {
  id: string;
  bytes: number;
  priority: number;
  /** Only evicted sessions registered with `load` are candidates; the guard filters. */
  uses: number;
  nextUseInMs: number | null;
  /** Measured time of its last load, ms; null: never measured (assumedReloadMs, if given, stands in). */
  reloadMs: number | null;
}

export interface PrewarmInput {
  now: number;
  /** Bytes a load may take without crossing the relief target (the guard: min(free, target - usage)). */
  roomBytes: number;
  candidates: readonly PrewarmCandidate[];
  /** The loaded sessions, for evictions when allowEviction. */
  residents: readonly VictimCandidate[];
  /** Until the next decision (the tick interval): a use due before then is already too late to wait for. */
  leadMs: number;
  /** Uses before a prediction is trusted. Default 3. */
  minUses?: number;
  /** Loads per decision. Default 1 (admissions are serialized anyway). */
  maxLoads?: number;
  allowEviction?: boolean;
  assumedReloadMs?: number;
}

export interface PrewarmLoad {
  id: string;
  bytes: number;
  nextUseInMs: number;
  reloadMs: number;
  /** Sessions to evict first (each predicted later than this one); empty when it fits. */
  evict: string[];
}

export interface PrewarmPlan {
  loads: PrewarmLoad[];
  skipped: Array<{ id: string; reason: 'few-uses' | 'no-reload-time' | 'not-due' | 'no-room' }>;
}

export function planPrewarm(input: PrewarmInput): PrewarmPlan {
  const minUses = input.minUses ?? 3;
  const maxLoads = input.maxLoads ?? 1;
  const plan: PrewarmPlan = { loads: [], skipped: [] };
  let room = Math.max(0, input.roomBytes);
  let residents = [...input.residents];
  const due: Array<PrewarmCandidate & { nextUseInMs: number; reloadMs: number }> = [];
  for (const c of input.candidates) {
    const reloadMs = c.reloadMs ?? input.assumedReloadMs ?? null;
    if (c.uses < minUses || c.nextUseInMs === null) plan.skipped.push({ id: c.id, reason: 'few-uses' });
    else if (reloadMs === null) plan.skipped.push({ id: c.id, reason: 'no-reload-time' });
    else if (c.nextUseInMs > reloadMs + input.leadMs) plan.skipped.push({ id: c.id, reason: 'not-due' });
    else due.push({ ...c, nextUseInMs: c.nextUseInMs, reloadMs });
  }
  // Most urgent first.
  due.sort((a, b) => a.nextUseInMs - b.nextUseInMs || b.priority - a.priority || (a.id < b.id ? -1 : 1));
  for (const c of due) {
    if (plan.loads.length >= maxLoads) break;
    if (c.bytes <= room) {
      plan.loads.push({ id: c.id, bytes: c.bytes, nextUseInMs: c.nextUseInMs, reloadMs: c.reloadMs, evict: [] });
      room -= c.bytes;
      continue;
    }
    if (input.allowEviction) {
      const later = residents.filter((r) => r.nextUseInMs !== null && r.nextUseInMs > c.nextUseInMs && r.priority <= c.priority);
      const evict: string[] = [];
      let freed = 0;
      for (const v of rankVictims(later, input.now)) {
        if (room + freed >= c.bytes) break;
        evict.push(v.candidate.id);
        freed += v.candidate.bytes;
      }
      if (room + freed >= c.bytes) {
        plan.loads.push({ id: c.id, bytes: c.bytes, nextUseInMs: c.nextUseInMs, reloadMs: c.reloadMs, evict });
        room = room + freed - c.bytes;
        residents = residents.filter((r) => !evict.includes(r.id));
        continue;
      }
    }
    plan.skipped.push({ id: c.id, reason: 'no-room' });
  }
  return plan;
}
