// Is a participant still the process that wrote its entry? A pid alone is not enough: pids are reused,
// so an entry names its process by pid and start time (/proc/<pid>/stat field 22, clock ticks since
// boot), and by boot id, so entries left in a directory that survives a reboot name no process.
import { readFileSync, statSync } from 'node:fs';

/** A process as the ledger names it. */
export interface ProcessKey {
  pid: number;
  /** /proc/<pid>/stat field 22, as a decimal string (ticks since boot; can pass 2^53 on long uptimes). */
  startTime: string;
}

export type Liveness = 'alive' | 'dead' | 'unverifiable';

/** Field 22 of /proc/<pid>/stat and the state (field 3), or null when the process is not visible here. */
export function readStat(pid: number): { startTime: string; state: string } | null {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'latin1');
  } catch {
    return null;
  }
  // Field 2 (comm) is in parentheses and may hold spaces and ')': the fields resume after the last ')'.
  const close = text.lastIndexOf(')');
  if (close < 0) return null;
  const fields = text.slice(close + 2).split(' ');
  // fields[0] is field 3 (state); field 22 is fields[19].
  const state = fields[0];
  const startTime = fields[19];
  if (state === undefined || startTime === undefined || !/^\d+$/.test(startTime)) return null;
  return { startTime, state };
}

/** This process's key. */
export function ownProcessKey(): ProcessKey {
  const stat = readStat(process.pid);
  if (!stat) throw new Error('cannot read /proc/self/stat: the node-wide ledger needs Linux procfs');
  return { pid: process.pid, startTime: stat.startTime };
}

let bootId: string | undefined;

/** /proc/sys/kernel/random/boot_id: changes on every boot. */
export function currentBootId(): string {
  if (bootId === undefined) {
    try {
      bootId = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
    } catch {
      bootId = 'unknown';
    }
  }
  return bootId;
}

/**
 * Whether the process `key` names still runs. A zombie counts as dead (its memory and its locks are
 * gone). Where /proc hides other users' processes (hidepid), a pid that kill(0) finds but whose start
 * time cannot be read is 'unverifiable', and the ledger keeps its entries: it never frees memory it
 * cannot prove free.
 */
export function liveness(key: ProcessKey): Liveness {
  const stat = readStat(key.pid);
  if (stat) {
    if (stat.state === 'Z' || stat.state === 'X' || stat.state === 'x') return 'dead';
    return stat.startTime === key.startTime ? 'alive' : 'dead';
  }
  try {
    process.kill(key.pid, 0);
    return 'unverifiable';
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM' ? 'unverifiable' : 'dead';
  }
}

/** The effective uid of a running process (the owner of /proc/<pid>), or null when not visible. */
export function processUid(pid: number): number | null {
  try {
    return statSync(`/proc/${pid}`).uid;
  } catch {
    return null;
  }
}
