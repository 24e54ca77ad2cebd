// Reading the node's ledger: every entry file of one GPU, each judged on its own. An entry counts only
// when its process is alive (pid and start time), it was written this boot, for this GPU, by the user
// the process runs as, and it validates. A live participant whose file is unreadable (truncated, bad
// JSON) counts with the last valid entry seen from it, so a damaged file never frees memory; its owner
// rewrites the file on its next tick. Dead participants' files are removed by housekeeping when they
// are ours to remove (same user); others' are ignored until their owner's next participant cleans up.
import { currentBootId, liveness, processUid, type Liveness } from './liveness';
import { ownedBy, readEntry, unlinkQuietly, type Entry } from './entry';
import type { LedgerPaths } from './directory';

export interface ScannedParticipant {
  entry: Entry;
  path: string;
  liveness: Exclude<Liveness, 'dead'>;
  /** The file did not read back; `entry` is the last valid one seen. */
  stale: boolean;
}

export interface ScanProblem {
  path: string;
  reason: string;
}

export interface ScanResult {
  participants: ScannedParticipant[];
  problems: ScanProblem[];
  /** Files of dead participants removed (housekeeping only). */
  removed: string[];
}

/** The last valid entry read from each path: what a damaged file falls back to. */
export type EntryCache = Map<string, Entry>;

export function scanLedger(
  paths: LedgerPaths,
  cache: EntryCache,
  options: { housekeeping: boolean; skip?: string },
): ScanResult {
  const uid = process.getuid?.() ?? 0;
  const boot = currentBootId();
  const result: ScanResult = { participants: [], problems: [], removed: [] };
  const seen = new Set<string>();
  for (const file of paths.list()) {
    if (file.path === options.skip) continue;
    const alive = liveness(file.key);
    if (alive === 'dead') {
      if (options.housekeeping && ownedBy(file.path, uid) && unlinkQuietly(file.path)) result.removed.push(file.path);
      cache.delete(file.path);
      continue;
    }
    if (file.temporary) continue;
    seen.add(file.path);
    const read = readEntry(file.path);
    if (!read.ok && read.reason === 'cannot open: ENOENT') {
      // Removed between the listing and the read: its participant closed.
      cache.delete(file.path);
      continue;
    }
    let problem: string | null = null;
    if (!read.ok) {
      problem = read.reason;
    } else {
      const e = read.entry;
      const runsAs = processUid(e.pid);
      if (e.pid !== file.key.pid || e.startTime !== file.key.startTime || e.instance !== file.instance) problem = 'names another process than its file name';
      else if (e.uuid !== paths.uuid) problem = `written for GPU ${e.uuid}`;
      else if (e.bootId !== boot) problem = 'written before this boot';
      else if (read.ownerUid !== e.uid) problem = `claims uid ${e.uid} but the file belongs to uid ${read.ownerUid}`;
      else if (runsAs !== null && runsAs !== 0 && runsAs !== read.ownerUid) {
        problem = `written by uid ${read.ownerUid} for a process of uid ${runsAs}`;
      }
      if (problem !== null) {
        // Forged or misplaced: never counted, never cached.
        result.problems.push({ path: file.path, reason: problem });
        cache.delete(file.path);
        continue;
      }
      cache.set(file.path, e);
      result.participants.push({ entry: e, path: file.path, liveness: alive, stale: false });
      continue;
    }
    result.problems.push({ path: file.path, reason: problem });
    const last = cache.get(file.path);
    if (last) result.participants.push({ entry: last, path: file.path, liveness: alive, stale: true });
  }
  for (const path of cache.keys()) if (!seen.has(path)) cache.delete(path);
  return result;
}

/** Bytes an entry holds in reservations. */
export function reservedOf(entry: Pick<Entry, 'reservations'>): number {
  let bytes = 0;
  for (const r of entry.reservations) bytes += r.bytes;
  return bytes;
}
