// One participant's entry: what it publishes about itself, and the strict reader every other
// participant applies to it. Nothing read from the directory is trusted: a file that does not parse,
// that carries figures out of range, or whose owner is not the process it names is rejected, and the
// ledger is whatever the live participants' valid entries say.
import { closeSync, fchmodSync, fstatSync, lstatSync, openSync, readSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { constants } from 'node:fs';
import { randomBytes } from 'node:crypto';

/** A session a participant declares (what a relief request could release). */
export interface DeclaredSession {
  id: string;
  bytes: number;
  /** Idle, not pinned, not busy: another participant's relief request may have it released. */
  releasable: boolean;
}

export interface DeclaredReservation {
  id: string;
  bytes: number;
  /** Wall-clock ms when admitted. */
  at: number;
}

/** A relief request: `from` asks the others to release `bytes` of idle sessions. */
export interface ReliefRequest {
  id: string;
  bytes: number;
  at: number;
}

export interface ReliefAnswer {
  /** The request answered: `<pid>-<starttime>-<instance>:<request id>`. */
  request: string;
  releasedBytes: number;
  at: number;
}

export interface Entry {
  version: 1;
  name: string;
  pid: number;
  startTime: string;
  /** Tells apart participants of one process (the n in the file name). */
  instance: number;
  uid: number;
  bootId: string;
  uuid: string;
  /** Bumped on every write. */
  seq: number;
  updatedAt: number;
  /** What the participant uses on this GPU: max(its measured usage, its declared sessions). */
  usageBytes: number;
  /** Its own hard limit (the guard's quota), null when it has none; absent in older entries. */
  hardBytes: number | null;
  sessions: DeclaredSession[];
  reservations: DeclaredReservation[];
  /** Whether it answers relief requests. */
  reliefListener: boolean;
  relief: ReliefRequest | null;
  answers: ReliefAnswer[];
}

const MAX_ENTRY_BYTES = 1 << 20;
const MAX_ITEMS = 10_000;

function bytesOk(n: unknown): n is number {
  return typeof n === 'number' && Number.isSafeInteger(n) && n >= 0;
}

function idOk(s: unknown): s is string {
  return typeof s === 'string' && s.length > 0 && s.length <= 256;
}

function listOf<T>(value: unknown, item: (v: Record<string, unknown>) => T | null): T[] | null {
  if (!Array.isArray(value) || value.length > MAX_ITEMS) return null;
  const out: T[] = [];
  for (const v of value) {
    if (typeof v !== 'object' || v === null) return null;
    const parsed = item(v as Record<string, unknown>);
    if (parsed === null) return null;
    out.push(parsed);
  }
  return out;
}

/** Validates a parsed entry field by field; returns why not, or the entry. */
export function validateEntry(value: unknown): Entry | string {
  if (typeof value !== 'object' || value === null) return 'not an object';
  const v = value as Record<string, unknown>;
  if (v.version !== 1) return `unknown version ${JSON.stringify(v.version)}`;
  if (!idOk(v.name)) return 'bad name';
  if (typeof v.pid !== 'number' || !Number.isSafeInteger(v.pid) || v.pid <= 0) return 'bad pid';
  if (typeof v.startTime !== 'string' || !/^\d+$/.test(v.startTime)) return 'bad startTime';
  if (typeof v.instance !== 'number' || !Number.isSafeInteger(v.instance) || v.instance < 0) return 'bad instance';
  if (typeof v.uid !== 'number' || !Number.isSafeInteger(v.uid) || v.uid < 0) return 'bad uid';
  if (typeof v.bootId !== 'string' || typeof v.uuid !== 'string') return 'bad bootId or uuid';
  if (!bytesOk(v.seq) || typeof v.updatedAt !== 'number') return 'bad seq or updatedAt';
  if (!bytesOk(v.usageBytes)) return 'bad usageBytes';
  const hardBytes = v.hardBytes === undefined || v.hardBytes === null ? null : v.hardBytes;
  if (hardBytes !== null && !bytesOk(hardBytes)) return 'bad hardBytes';
  const sessions = listOf(v.sessions, (s) =>
    idOk(s.id) && bytesOk(s.bytes) && typeof s.releasable === 'boolean'
      ? { id: s.id, bytes: s.bytes, releasable: s.releasable }
      : null,
  );
  if (!sessions) return 'bad sessions';
  const reservations = listOf(v.reservations, (r) =>
    idOk(r.id) && bytesOk(r.bytes) && typeof r.at === 'number' ? { id: r.id, bytes: r.bytes, at: r.at } : null,
  );
  if (!reservations) return 'bad reservations';
  if (typeof v.reliefListener !== 'boolean') return 'bad reliefListener';
  let relief: ReliefRequest | null = null;
  if (v.relief !== null) {
    const r = v.relief as Record<string, unknown> | undefined;
    if (typeof r !== 'object' || !idOk(r.id) || !bytesOk(r.bytes) || typeof r.at !== 'number') return 'bad relief';
    relief = { id: r.id, bytes: r.bytes, at: r.at };
  }
  const answers = listOf(v.answers, (a) =>
    idOk(a.request) && bytesOk(a.releasedBytes) && typeof a.at === 'number'
      ? { request: a.request, releasedBytes: a.releasedBytes, at: a.at }
      : null,
  );
  if (!answers) return 'bad answers';
  return {
    version: 1,
    name: v.name,
    pid: v.pid,
    startTime: v.startTime,
    instance: v.instance,
    uid: v.uid,
    bootId: v.bootId,
    uuid: v.uuid,
    seq: v.seq,
    updatedAt: v.updatedAt,
    usageBytes: v.usageBytes,
    hardBytes,
    sessions,
    reservations,
    reliefListener: v.reliefListener,
    relief,
    answers,
  };
}

/** What reading one entry file gave: the entry and its file's owner, or why it was rejected. */
export type EntryRead = { ok: true; entry: Entry; ownerUid: number } | { ok: false; reason: string };

/** Reads and validates one entry file (a regular file, not a link, at most 1 MiB). */
export function readEntry(path: string): EntryRead {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (error) {
    return { ok: false, reason: `cannot open: ${(error as NodeJS.ErrnoException).code ?? String(error)}` };
  }
  try {
    const stat = fstatSync(fd);
    if (!stat.isFile()) return { ok: false, reason: 'not a regular file' };
    if (stat.size > MAX_ENTRY_BYTES) return { ok: false, reason: `too large (${stat.size} bytes)` };
    const buffer = Buffer.alloc(stat.size);
    let read = 0;
    while (read < stat.size) {
      const n = readSync(fd, buffer, read, stat.size - read, read);
      if (n === 0) break;
      read += n;
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(buffer.toString('utf8', 0, read));
    } catch {
      return { ok: false, reason: read === 0 ? 'empty' : 'truncated or not JSON' };
    }
    const entry = validateEntry(parsed);
    if (typeof entry === 'string') return { ok: false, reason: entry };
    return { ok: true, entry, ownerUid: stat.uid };
  } finally {
    closeSync(fd);
  }
}

/**
 * Writes the entry whole or not at all: a new temporary (O_EXCL, so no link is followed), made 0644
 * whatever the umask (others must read it), then renamed over the entry. A crash leaves the old entry
 * or a temporary the next same-user participant removes.
 */
export function writeEntry(path: string, entry: Entry): void {
  const temporary = `${path}.tmp-${randomBytes(6).toString('hex')}`;
  const fd = openSync(temporary, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o644);
  try {
    fchmodSync(fd, 0o644);
    const data = Buffer.from(JSON.stringify(entry));
    let written = 0;
    while (written < data.length) written += writeSync(fd, data, written, data.length - written);
  } catch (error) {
    closeSync(fd);
    unlinkQuietly(temporary);
    throw error;
  }
  closeSync(fd);
  try {
    renameSync(temporary, path);
  } catch (error) {
    unlinkQuietly(temporary);
    throw error;
  }
}

export function unlinkQuietly(path: string): boolean {
  try {
    unlinkSync(path);
    return true;
  } catch {
    return false;
  }
}

/** True when path exists and is a regular file owned by uid (used before removing someone's leftovers). */
export function ownedBy(path: string, uid: number): boolean {
  try {
    const stat = lstatSync(path);
    return stat.isFile() && stat.uid === uid;
  } catch {
    return false;
  }
}
