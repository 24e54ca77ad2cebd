// Who runs a GPU process and what it is: the user from /proc/<pid>/status (real uid, named through
// /etc/passwd), the command from /proc/<pid>/cmdline (or [comm] when it is empty). NVML reports pids
// of the host's pid namespace: in a container, or with the mock, a pid may not exist here; it then
// reads as null (shown as '-').
import { readFileSync } from 'node:fs';

export interface ProcessIdentity {
  user: string;
  /** The command line, arguments joined by spaces, control characters replaced. */
  command: string;
  /** The kernel's short name (/proc/<pid>/comm), up to 15 characters. */
  name: string;
}

let users: Map<number, string> | undefined;

function userName(uid: number): string {
  if (!users) {
    users = new Map();
    try {
      for (const line of readFileSync('/etc/passwd', 'utf8').split('\n')) {
        const [name, , id] = line.split(':');
        if (name && id && /^\d+$/.test(id) && !users.has(Number(id))) users.set(Number(id), name);
      }
    } catch {
      // no /etc/passwd: numeric uids
    }
  }
  return users.get(uid) ?? String(uid);
}

function printable(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/[\u0000-\u001f\u007f-\u009f]/g, ' ').trim();
}

/** Reads the identity of a process, or null when it does not exist here (or cannot be read). */
export function readProcessIdentity(pid: number): ProcessIdentity | null {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const uid = /^Uid:\s+(\d+)/m.exec(status)?.[1];
    const name = printable(/^Name:\s+(.*)$/m.exec(status)?.[1] ?? '');
    let command = '';
    try {
      command = printable(readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0+$/, '').replace(/\0/g, ' '));
    } catch {
      // exited between the two reads, or hidden
    }
    return { user: uid === undefined ? '?' : userName(Number(uid)), command: command || `[${name}]`, name };
  } catch {
    return null;
  }
}

/**
 * Identities cached per pid while NVML keeps listing the pid: `refresh(pids)` reads new pids and
 * forgets those gone, so a tick costs file reads only for processes that just appeared.
 */
export class ProcessDirectory {
  private readonly known = new Map<number, ProcessIdentity | null>();

  refresh(pids: Iterable<number>): void {
    const seen = new Set<number>();
    for (const pid of pids) {
      seen.add(pid);
      if (!this.known.has(pid)) this.known.set(pid, readProcessIdentity(pid));
    }
    for (const pid of this.known.keys()) if (!seen.has(pid)) this.known.delete(pid);
  }

  get(pid: number): ProcessIdentity | null {
    return this.known.get(pid) ?? null;
  }
}
