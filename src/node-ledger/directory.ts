// Where the node-wide ledger lives, and the checks that make it safe to share between users.
//
// Files sit directly in a sticky, root-owned directory (/dev/shm by default, like /tmp): the sticky bit
// lets only a file's owner (or root) remove or rename it, so no other user can delete or replace a
// participant's entry. A subdirectory we created would belong to whoever came first, and its owner could
// unlink everyone's entries; so there is none. Names: `vramguard-<uuid>.lock` (the shared flock target)
// and `vramguard-<uuid>.<pid>-<starttime>-<n>.json` (one entry per participant, 0644, owner-written; n tells
// apart several participants in one process).
import { lstatSync, mkdirSync, readdirSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { NodeLedgerError } from '../errors';
import type { ProcessKey } from './liveness';

/** The directory every participant on the node uses unless told otherwise. */
export function defaultLedgerDirectory(): string {
  const explicit = process.env.VRAMGUARD_NODE_DIR;
  if (explicit && explicit.length > 0) return explicit;
  // The first that exists, not the first we can write: participants must agree without talking.
  for (const candidate of ['/dev/shm', '/run/vramguard']) {
    try {
      if (statSync(candidate).isDirectory()) return candidate;
    } catch {
      // absent here
    }
  }
  return tmpdir();
}

/** Checks that dir is a real directory in which other users cannot remove or replace our entries. */
export function checkLedgerDirectory(dir: string, options: { create?: boolean } = {}): void {
  let stat;
  try {
    stat = lstatSync(dir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT' || !options.create) {
      throw new NodeLedgerError(dir, `ledger directory not usable: ${(error as Error).message}`);
    }
    mkdirSync(dir, { recursive: true, mode: 0o755 });
    stat = lstatSync(dir);
  }
  if (stat.isSymbolicLink()) throw new NodeLedgerError(dir, 'ledger directory is a symbolic link; give the real path');
  if (!stat.isDirectory()) throw new NodeLedgerError(dir, 'ledger directory is not a directory');
  const uid = process.getuid?.() ?? 0;
  if (stat.uid !== 0 && stat.uid !== uid) {
    throw new NodeLedgerError(
      dir,
      `ledger directory is owned by uid ${stat.uid}, who could remove other participants' entries; ` +
        'use a root-owned sticky directory such as /dev/shm',
    );
  }
  const othersWrite = (stat.mode & 0o022) !== 0;
  const sticky = (stat.mode & 0o1000) !== 0;
  if (othersWrite && !sticky) {
    throw new NodeLedgerError(
      dir,
      `ledger directory has mode ${(stat.mode & 0o7777).toString(8)}: writable by others without the sticky bit ` +
        '(anyone could delete entries); chmod 1777 or use /dev/shm',
    );
  }
}

/** GPU UUIDs as NVML gives them (GPU-…, MIG-…): a file-name-safe token. */
export function checkUuid(uuid: unknown): string {
  if (typeof uuid !== 'string' || !/^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$/.test(uuid)) {
    throw new NodeLedgerError('uuid', `expected a GPU UUID such as GPU-5f1c…, got ${JSON.stringify(uuid)}`);
  }
  return uuid;
}

/** The file names of one GPU's ledger in dir. */
export class LedgerPaths {
  readonly prefix: string;
  readonly lock: string;
  constructor(
    readonly dir: string,
    readonly uuid: string,
  ) {
    this.prefix = `vramguard-${uuid}.`;
    this.lock = join(dir, `${this.prefix}lock`);
  }

  entry(key: ProcessKey, instance: number): string {
    return join(this.dir, `${this.prefix}${key.pid}-${key.startTime}-${instance}.json`);
  }

  /** Entry files and leftover temporaries in dir, by name, with the process key the name carries. */
  list(): Array<{ path: string; key: ProcessKey; instance: number; temporary: boolean }> {
    const found: Array<{ path: string; key: ProcessKey; instance: number; temporary: boolean }> = [];
    let names: string[];
    try {
      names = readdirSync(this.dir);
    } catch (error) {
      throw new NodeLedgerError(this.dir, `cannot list the ledger directory: ${(error as Error).message}`);
    }
    for (const name of names) {
      if (!name.startsWith(this.prefix)) continue;
      const match = /^(\d+)-(\d+)-(\d+)\.json(\.tmp-[0-9a-f]+)?$/.exec(name.slice(this.prefix.length));
      if (!match) continue;
      found.push({
        path: join(this.dir, name),
        key: { pid: Number(match[1]), startTime: match[2]! },
        instance: Number(match[3]),
        temporary: match[4] !== undefined,
      });
    }
    return found;
  }
}
