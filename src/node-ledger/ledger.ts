// NodeLedger: one participant's handle on the node-wide ledger of one GPU. Design (why files + flock):
//
// - No daemon: state lives in files in a sticky root-owned directory (/dev/shm: tmpfs, gone at reboot),
//   one entry per participant, written only by its owner, so the kernel's permission checks are the
//   guarantee that no other user rewrites or removes a participant's figures (a single shared ledger
//   file would have to be writable by all, and anyone could rewrite it).
// - Admissions are serialized by flock(2) on one shared lock file: the kernel drops it when the holder
//   dies, so a crashed or SIGKILLed holder blocks no one, and there is no lease to tune.
// - Every read re-derives the ledger from the live participants' entries (pid + start time + boot id),
//   so a dead participant's reservations stop counting the moment its process is gone, and a
//   damaged file is never trusted (see scan.ts).
// - Anything that can raise the node's total (an admission, a declare) writes under the lock; what only
//   lowers it (cancel, close) may write without it. An observer holding the lock therefore sees a total
//   no smaller than the true one.
import { EventEmitter } from 'node:events';
import { statSync } from 'node:fs';

import { ClosedError, InvalidOptionError, NodeShareError } from '../errors';
import { parseBytes, parseDuration, type Duration } from '../units';
import { checkLedgerDirectory, checkUuid, defaultLedgerDirectory, LedgerPaths } from './directory';
import { readEntry, unlinkQuietly, writeEntry, type DeclaredSession, type Entry } from './entry';
import { nodeFree, type NodeFreeResult } from './free';
import { currentBootId, ownProcessKey, type ProcessKey } from './liveness';
import { NodeLock } from './lock';
import { readPolicy, shareBytes, type NodePolicy } from './policy';
import { ReliefDesk, type ReliefHandler, type ReliefOutcome } from './relief';
import { NodeReservation } from './reservation';
import { describeParticipant, publishedUsage } from './view';
import { reservedOf, scanLedger, type EntryCache, type ScannedParticipant } from './scan';
import type { NodeAdmission, NodeLedgerEvents, NodeLedgerOptions, OwnFigures, ParticipantInfo } from './types';

let nextInstance = 1;

export interface DeclaredState {
  usageBytes?: number;
  sessions?: DeclaredSession[];
}

/** A participant's name as the policy file names it: 1-64 letters, digits or ._:@-. */
export function checkParticipantName(name: unknown): string {
  if (typeof name !== 'string' || !/^[A-Za-z0-9._:@-]{1,64}$/.test(name)) {
    throw new InvalidOptionError('node.name', `expected 1-64 letters, digits or ._:@-, got ${JSON.stringify(name)}`);
  }
  return name;
}

export class NodeLedger extends EventEmitter<NodeLedgerEvents> {
  readonly uuid: string;
  readonly name: string;
  readonly paths: LedgerPaths;
  readonly key: ProcessKey;
  /** Tells apart several participants in this process. */
  readonly instance: number;
  private readonly lock: NodeLock;
  private readonly lockTimeoutMs: number;
  private readonly paddingBytes: number;
  private readonly cache: EntryCache = new Map();
  private readonly relief: ReliefDesk;
  private readonly reportedProblems = new Set<string>();
  private readonly entry: Entry;
  private readonly ownPath: string;
  private deviceTotalBytes: number | null;
  private policy: NodePolicy | null = null;
  private policyMtime = 0;
  private wasOverShare = false;
  private timer: NodeJS.Timeout | null = null;
  private ticking = false;
  private closed = false;
  private nextReservation = 1;

  private constructor(private readonly options: NodeLedgerOptions) {
    super();
    this.uuid = checkUuid(options.uuid);
    this.name = checkParticipantName(options.name);
    const dir = options.dir ?? defaultLedgerDirectory();
    checkLedgerDirectory(dir, { create: options.dir !== undefined });
    this.paths = new LedgerPaths(dir, this.uuid);
    this.key = ownProcessKey();
    this.instance = nextInstance++;
    this.ownPath = this.paths.entry(this.key, this.instance);
    this.lock = new NodeLock(this.paths.lock);
    this.lockTimeoutMs = parseDuration(options.lockTimeout ?? '10s', 'node.lockTimeout');
    this.paddingBytes = parseBytes(options.padding ?? 0, 'node.padding');
    this.deviceTotalBytes =
      options.deviceTotalBytes === undefined || options.deviceTotalBytes === null
        ? null
        : parseBytes(options.deviceTotalBytes, 'node.deviceTotalBytes');
    if (options.policyFile !== undefined) this.loadPolicy();
    this.entry = {
      version: 1,
      name: this.name,
      pid: this.key.pid,
      startTime: this.key.startTime,
      instance: this.instance,
      uid: process.getuid?.() ?? 0,
      bootId: currentBootId(),
      uuid: this.uuid,
      seq: 0,
      updatedAt: Date.now(),
      usageBytes: 0,
      hardBytes: options.hardBytes === undefined || options.hardBytes === null || options.hardBytes === Infinity ? null : parseBytes(options.hardBytes, 'node.hardBytes'),
      sessions: [],
      reservations: [],
      reliefListener: false,
      relief: null,
      answers: [],
    };
    this.relief = new ReliefDesk({
      self: this.entry,
      scan: () => this.scan(false),
      publish: () => this.publish(),
      withLock: (fn) => this.lock.withLock(this.lockTimeoutMs, fn),
      onRequest: (request) => this.emit('relief-request', request),
      onError: (error) => this.emit('error', error),
    });
  }

  /** Joins the node's ledger for one GPU: publishes this participant's (empty) entry. */
  static async join(options: NodeLedgerOptions): Promise<NodeLedger> {
    const ledger = new NodeLedger(options);
    ledger.entry.usageBytes = parseBytes(options.usageBytes ?? 0, 'node.usageBytes');
    try {
      await ledger.lock.withLock(ledger.lockTimeoutMs, () => {
        ledger.scan(true);
        ledger.publish();
      });
    } catch (error) {
      ledger.lock.close();
      throw error;
    }
    const interval = parseDuration(options.tickInterval ?? '250ms', 'node.tickInterval');
    ledger.timer = setInterval(() => void ledger.tick(), Math.max(10, interval));
    ledger.timer.unref();
    return ledger;
  }

  /**
   * One admission attempt, serialized node-wide: under the lock, reads every live participant and
   * reserves `bytes` if they fit. Does not wait or evict: on a refusal the caller frees room (its own
   * evictions, requestRelief()) and tries again. `room`, when given, decides instead of nodeFree's
   * minimum (the guard's own free-memory function, taking these figures as one of its constraints).
   */
  async admit(
    bytes: number,
    own: OwnFigures,
    options: { id?: string; room?: (figures: NodeFreeResult) => number } = {},
  ): Promise<NodeAdmission> {
    this.ensureOpen();
    const need = parseBytes(bytes, 'bytes');
    const checked = this.checkFigures(own);
    return this.lock.withLock(this.lockTimeoutMs, () => {
      this.ensureOpen();
      this.entry.usageBytes = checked.usage;
      const figures = this.free(checked, this.scan(true));
      if (need > (options.room ? options.room(figures) : figures.freeBytes)) {
        const shareError = figures.limitedBy === 'share' ? this.shareError(need) : null;
        return { admitted: false as const, figures, shareError };
      }
      // Unique within the entry even when callers reuse a label (a session reloading twice).
      const id = `${options.id ?? 'load'}#${this.nextReservation++}`;
      this.entry.reservations.push({ id, bytes: need, at: Date.now() });
      this.publish();
      this.options.insideAdmission?.();
      return { admitted: true as const, reservation: new NodeReservation((rid, session) => this.settle(rid, session), id, need), figures };
    });
  }

  /**
   * What an admission would get now, read without the lock (for status(), metrics, `watch`): the same
   * figures admit() decides on, changing nothing.
   */
  freeNow(own: OwnFigures): NodeFreeResult {
    this.ensureOpen();
    const checked = this.checkFigures(own);
    return this.free(checked, this.scan(false));
  }

  /**
   * Publishes what this participant holds now: its measured usage and its sessions. Given a function,
   * it is read under the lock (what the caller holds at the moment of the write, not before the wait).
   */
  async declare(state: DeclaredState | (() => DeclaredState)): Promise<void> {
    this.ensureOpen();
    await this.lock.withLock(this.lockTimeoutMs, () => {
      const now = typeof state === 'function' ? state() : state;
      const sessions = now.sessions?.map((s) => ({ id: String(s.id), bytes: parseBytes(s.bytes, `session ${s.id}`), releasable: s.releasable === true }));
      if (now.usageBytes !== undefined) this.entry.usageBytes = parseBytes(Math.max(0, now.usageBytes), 'usageBytes');
      if (sessions) this.entry.sessions = sessions;
      this.publish();
    });
    this.checkShare();
  }

  /** NodeReservation.commit / cancel. */
  private async settle(reservationId: string, session: DeclaredSession | null): Promise<void> {
    const apply = () => {
      const at = this.entry.reservations.findIndex((r) => r.id === reservationId);
      if (at >= 0) this.entry.reservations.splice(at, 1);
      if (session) this.entry.sessions = [...this.entry.sessions.filter((s) => s.id !== session.id), session];
      if (!this.closed) this.publish();
    };
    // A cancel only lowers the total, and a commit of no more than was reserved moves bytes within one
    // entry (one write): no lock. A commit of more raises the total, so it takes the lock like an admission.
    const reserved = this.entry.reservations.find((r) => r.id === reservationId)?.bytes ?? 0;
    if (session && session.bytes > reserved && !this.closed) {
      await this.lock.withLock(this.lockTimeoutMs, apply);
    } else {
      apply();
    }
  }

  /**
   * Every live participant (this one included), read now without the lock. Changes nothing in the
   * ledger (no housekeeping); it only remembers each valid entry, the copy a damaged file falls back to.
   */
  participants(): ParticipantInfo[] {
    return this.describe(this.scan(false));
  }

  /** The same, read under the lock: a consistent view (nobody admits while it reads). */
  async snapshot(): Promise<ParticipantInfo[]> {
    return this.lock.withLock(this.lockTimeoutMs, () => this.describe(this.scan(false)));
  }

  /** This participant's share by the policy, null when it has none. */
  shareBytes(): number | null {
    return shareBytes(this.policy, this.name, this.uuid, this.usableBytes());
  }

  /** NodeShareError with the figures when this participant is over its share now; else null. */
  overShare(): NodeShareError | null {
    const share = this.shareBytes();
    if (share === null) return null;
    return publishedUsage(this.entry) + reservedOf(this.entry) > share ? this.shareError(0) : null;
  }

  /** Answers other participants' relief requests with handler (release idle sessions, return bytes freed). */
  onReliefRequest(handler: ReliefHandler): () => void {
    this.ensureOpen();
    return this.relief.listen(handler);
  }

  /** Asks the other participants to release `bytes` of idle sessions; resolves when all answered or at timeout. */
  requestRelief(bytes: number, options: { timeout?: Duration } = {}): Promise<ReliefOutcome> {
    this.ensureOpen();
    return this.relief.request(parseBytes(bytes, 'bytes'), parseDuration(options.timeout ?? '5s', 'timeout'));
  }

  /** Leaves the ledger: removes this participant's entry (its reservations with it). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    this.relief.close();
    // Removal only lowers the node's total: no lock needed, so close() works even while another holds it.
    unlinkQuietly(this.ownPath);
    this.lock.close();
  }

  private async tick(): Promise<void> {
    if (this.ticking || this.closed) return;
    this.ticking = true;
    try {
      if (this.options.policyFile !== undefined) this.loadPolicy();
      this.repairOwnEntry();
      await this.relief.tick();
      this.checkShare();
    } catch (error) {
      if (!this.closed) this.emit('error', error as Error);
    } finally {
      this.ticking = false;
    }
  }

  /** Our entry as we last wrote it, or rewritten: a file that someone (root) damaged is rebuilt. */
  private repairOwnEntry(): void {
    const read = readEntry(this.ownPath);
    if (read.ok && read.entry.seq === this.entry.seq) return;
    void this.lock.withLock(this.lockTimeoutMs, () => {
      if (!this.closed) this.publish();
    }).catch((error: Error) => this.emit('error', error));
  }

  private publish(): void {
    if (this.closed) return; // close() removed the entry; nothing may bring it back
    this.entry.seq += 1;
    this.entry.updatedAt = Date.now();
    writeEntry(this.ownPath, this.entry);
  }

  private scan(housekeeping: boolean): ScannedParticipant[] {
    const result = scanLedger(this.paths, this.cache, { housekeeping, skip: this.ownPath });
    for (const problem of result.problems) {
      const key = `${problem.path}\0${problem.reason}`;
      if (this.reportedProblems.has(key)) continue;
      this.reportedProblems.add(key);
      this.emit('problem', problem);
    }
    return result.participants;
  }

  private checkFigures(own: OwnFigures): { usage: number; deviceFree: number | null; hard: number } {
    const usage = parseBytes(own.usageBytes, 'own.usageBytes');
    const deviceFree = own.deviceFreeBytes === undefined || own.deviceFreeBytes === null ? null : parseBytes(own.deviceFreeBytes, 'own.deviceFreeBytes');
    const hard = own.hardBytes === undefined || own.hardBytes === Infinity ? Infinity : parseBytes(own.hardBytes, 'own.hardBytes');
    if (own.deviceTotalBytes !== undefined && own.deviceTotalBytes !== null) {
      this.deviceTotalBytes = parseBytes(own.deviceTotalBytes, 'own.deviceTotalBytes');
    }
    return { usage, deviceFree, hard };
  }

  private free(own: { usage: number; deviceFree: number | null; hard: number }, others: ScannedParticipant[]): NodeFreeResult {
    return nodeFree({
      deviceFreeBytes: own.deviceFree,
      deviceTotalBytes: this.deviceTotalBytes,
      paddingBytes: this.paddingBytes,
      ownHardBytes: own.hard,
      ownUsageBytes: Math.max(own.usage, publishedUsage({ usageBytes: 0, sessions: this.entry.sessions })),
      ownReservedBytes: reservedOf(this.entry),
      others: others.map((p) => ({ usageBytes: publishedUsage(p.entry), reservedBytes: reservedOf(p.entry) })),
      shareBytes: this.shareBytes(),
    });
  }

  private describe(others: ScannedParticipant[]): ParticipantInfo[] {
    const all = [{ entry: this.entry, liveness: 'alive' as const, stale: false }, ...others];
    const usable = this.usableBytes();
    return all.map((p, i) => describeParticipant(p, i === 0, shareBytes(this.policy, p.entry.name, this.uuid, usable)));
  }

  private usableBytes(): number | null {
    return this.deviceTotalBytes === null ? null : this.deviceTotalBytes - this.paddingBytes;
  }

  /** NodeShareError with the figures, for a load of neededBytes (0: found over at start or on a declare). */
  shareError(neededBytes: number): NodeShareError {
    return new NodeShareError({
      participant: this.name,
      uuid: this.uuid,
      shareBytes: this.shareBytes() ?? Infinity,
      usageBytes: publishedUsage(this.entry),
      reservedBytes: reservedOf(this.entry),
      neededBytes,
    });
  }

  private checkShare(): void {
    const over = this.overShare();
    if (over && !this.wasOverShare) this.emit('over-share', over);
    this.wasOverShare = over !== null;
  }

  private loadPolicy(): void {
    const path = this.options.policyFile!;
    if (this.policy && statSync(path).mtimeMs === this.policyMtime) return;
    const { policy, mtimeMs } = readPolicy(path);
    this.policy = policy;
    this.policyMtime = mtimeMs;
  }

  private ensureOpen(): void {
    if (this.closed) throw new ClosedError(`node ledger of ${this.name} on ${this.uuid}`);
  }
}

