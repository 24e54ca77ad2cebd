// vitest globalSetup: no test may leave a process behind.
//
// setup() marks this run with a unique VRAMGUARD_TEST_RUN in the environment, which every test worker
// and everything they spawn inherit (a daemon that re-parents itself to init, like a tmux server,
// keeps it too). teardown() runs after every test worker has gone: any process still carrying the
// mark is a leak (found even after it was re-parented): it is listed with its command line, killed, and
// the run fails. A test that gives a child a whole new environment passes the mark on itself.
import { randomUUID } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';

export const RUN_MARK = 'VRAMGUARD_TEST_RUN';

interface ProcessInfo {
  pid: number;
  ppid: number;
  command: string;
}

function readProcess(pid: number): ProcessInfo | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // "pid (comm) state ppid ...": comm may hold spaces and parentheses, so split after the last ')'.
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    const command = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0+$/, '').replace(/\0/g, ' ');
    return { pid, ppid, command: command || stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')')) };
  } catch {
    return null; // gone meanwhile, or not ours to read
  }
}

/** Processes other than this one whose environment carries `mark` (only our own user's are readable). */
export function markedProcesses(mark: string): ProcessInfo[] {
  const needle = `${RUN_MARK}=${mark}\0`;
  const found: ProcessInfo[] = [];
  for (const entry of readdirSync('/proc')) {
    const pid = Number(entry);
    if (!Number.isInteger(pid) || pid === process.pid) continue;
    let environ: string;
    try {
      environ = readFileSync(`/proc/${pid}/environ`, 'utf8');
    } catch {
      continue;
    }
    if (!`${environ}\0`.includes(needle)) continue;
    const info = readProcess(pid);
    // A zombie has an empty environ, so it never matches: only live processes are reported.
    if (info) found.push(info);
  }
  return found;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.[0] !== 'Z';
  } catch {
    return false;
  }
}

async function waitUntil(predicate: () => boolean): Promise<boolean> {
  // Bounded so a teardown never hangs; a condition, polled.
  const deadline = Date.now() + 10_000;
  while (!predicate()) {
    if (Date.now() > deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return true;
}

export function setup(): () => Promise<void> {
  const mark = process.env[RUN_MARK] ?? randomUUID();
  process.env[RUN_MARK] = mark;
  const before = new Set(markedProcesses(mark).map((p) => p.pid));
  return async () => {
    // The test workers themselves carry the mark: give them the moment they need to exit.
    const isLeak = (p: ProcessInfo) => !before.has(p.pid);
    await waitUntil(() => markedProcesses(mark).filter(isLeak).length === 0);
    const leaks = markedProcesses(mark).filter(isLeak);
    if (leaks.length === 0) return;
    for (const leak of leaks) {
      try {
        process.kill(leak.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    await waitUntil(() => leaks.every((l) => !isAlive(l.pid)));
    // vitest only logs a teardown error: the exit status has to say it too.
    process.exitCode = 1;
    const list = leaks.map((l) => `  pid ${l.pid} (parent ${l.ppid}): ${l.command}`).join('\n');
    throw new Error(`${leaks.length} process(es) started by the tests were still running at the end (now killed):\n${list}`);
  };
}
