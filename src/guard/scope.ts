// Which processes' GPU memory counts against the quota: this process and its descendants (read from
// /proc), a fixed pid list, or the whole device. Also tells when NVML's pids cannot be matched to
// ours (containers where NVML reports host PIDs) so the guard can fall back to device scope.
import { readFileSync, readdirSync } from 'node:fs';

import type { DeviceSample } from '../types';

export type ScopeOption = 'process-tree' | 'device' | { pids: number[] };

/** Children by parent, from /proc/<pid>/stat; empty where /proc is not readable. */
function readParentMap(): Map<number, number[]> {
  const children = new Map<number, number[]>();
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return children;
  }
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      // Field 4 is the parent pid; the command (field 2) may contain spaces and parentheses.
      const afterCommand = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const parent = Number(afterCommand[1]);
      const list = children.get(parent);
      if (list) list.push(Number(entry));
      else children.set(parent, [Number(entry)]);
    } catch {
      // the process ended while we looked
    }
  }
  return children;
}

/**
 * Direct children of pid from /proc/<pid>/task/<tid>/children (every thread can fork): a few reads per
 * process in our tree rather than a scan of every process on the host. Null when the kernel does not
 * offer the file (CONFIG_PROC_CHILDREN), so the caller falls back to the full scan.
 */
function childrenOf(pid: number): number[] | null {
  let tasks: string[];
  try {
    tasks = readdirSync(`/proc/${pid}/task`);
  } catch {
    return []; // the process is gone
  }
  const children: number[] = [];
  for (const tid of tasks) {
    let text: string;
    try {
      text = readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT' && tid === String(pid)) {
        // The main thread is there but has no children file: the kernel lacks it.
        try {
          readdirSync(`/proc/${pid}/task/${tid}`);
          return null;
        } catch {
          return [];
        }
      }
      continue; // the thread ended while we looked
    }
    for (const child of text.split(' ')) if (child.trim() !== '') children.push(Number(child));
  }
  return children;
}

/** The pid and every descendant of it, sorted. */
export function processTree(root: number = process.pid): number[] {
  const tree = [root];
  for (let i = 0; i < tree.length; i += 1) {
    const children = childrenOf(tree[i]!);
    if (children === null) return processTreeByScan(root);
    tree.push(...children);
  }
  return tree.sort((a, b) => a - b);
}

/** processTree by reading every /proc/<pid>/stat (kernels without task children files). */
function processTreeByScan(root: number): number[] {
  const children = readParentMap();
  const tree = [root];
  for (let i = 0; i < tree.length; i += 1) {
    for (const child of children.get(tree[i]!) ?? []) tree.push(child);
  }
  return tree.sort((a, b) => a - b);
}

function pidExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export interface ScopeUsage {
  /** Bytes the scope uses on the device, by NVML. */
  bytes: number;
  /** The pids of ours NVML listed. */
  matchedPids: number[];
}

/** Sums our pids' bytes on the device; null when the process list is unreadable. */
export function sumPids(device: DeviceSample, pids: readonly number[]): ScopeUsage | null {
  if (!device.processes) return null;
  const wanted = new Set(pids);
  let bytes = 0;
  const matchedPids: number[] = [];
  for (const p of device.processes) {
    if (!wanted.has(p.pid)) continue;
    matchedPids.push(p.pid);
    if (p.usedBytes !== null) bytes += p.usedBytes;
  }
  return { bytes, matchedPids };
}

/**
 * What a watermark compares with its threshold, as the native sampler computes it: the summed bytes of
 * `pids` on the device, or the device's used bytes; null when that cannot be read (no crossing then).
 */
export function watermarkValue(device: DeviceSample, pids?: readonly number[]): number | null {
  if (device.lost) return null;
  if (pids) return sumPids(device, pids)?.bytes ?? null;
  return device.memoryUsedBytes;
}

export interface PerProcessProblem {
  /**
   * unlisted: the process list is unreadable now (transient);
   * host-pids: NVML lists only pids that do not exist in this PID namespace, none of ours (a container
   *   where NVML reports host PIDs; also, briefly, processes that just exited: confirm over time);
   * not-available: our pids are listed but NVML cannot attribute their memory.
   */
  kind: 'unlisted' | 'host-pids' | 'not-available';
  message: string;
}

/** Why per-process accounting cannot be trusted on this device now, or null when it can. */
export function perProcessProblem(device: DeviceSample, pids: readonly number[]): PerProcessProblem | null {
  if (!device.processes) {
    const reason = device.missing.processes;
    return {
      kind: 'unlisted',
      message: `NVML cannot list processes on GPU ${device.index}${reason ? ` (${reason.code} from ${reason.function})` : ''}`,
    };
  }
  const ours = new Set(pids);
  const listed = device.processes;
  const mine = listed.filter((p) => ours.has(p.pid));
  if (mine.length > 0 && mine.every((p) => p.usedBytes === null)) {
    return {
      kind: 'not-available',
      message: `NVML reports no per-process memory for pids ${mine.map((p) => p.pid).join(', ')} (not available)`,
    };
  }
  if (mine.length === 0 && listed.length > 0 && listed.every((p) => !pidExists(p.pid))) {
    return {
      kind: 'host-pids',
      message: `NVML lists only pids not in this PID namespace (${listed
        .slice(0, 5)
        .map((p) => p.pid)
        .join(', ')}): it reports host PIDs (container?)`,
    };
  }
  return null;
}
