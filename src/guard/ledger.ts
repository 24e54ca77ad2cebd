// The ledger: the sessions the guard holds and the reservations it granted, and the one function that
// says how much memory an admission could get. Sessions' declared bytes are accounted here only (a
// resize changes a session's bytes; a child counts its own bytes, its parent its own).
import { GuardDrainingError, InvalidOptionError } from '../errors';
import type { ByteSize } from '../units';
import type { Session, SessionOptions } from './sessions';
import type { Measurement, ReservationInfo } from './types';

export type CommitOptions = Omit<SessionOptions, 'bytes'> & { bytes?: ByteSize; id?: string };

/** An admitted load: memory set aside until commit() registers the session or cancel() returns it. */
export class Reservation implements Disposable {
  private settled = false;
  /** @internal */
  constructor(
    readonly id: string | undefined,
    readonly bytes: number,
    readonly createdAt: number,
    private readonly onCommit: (r: Reservation, id: string, options: CommitOptions) => Session,
    private readonly onCancel: (r: Reservation) => void,
  ) {}

  get active(): boolean {
    return !this.settled;
  }

  /** Registers the loaded model as a session (bytes default to the reserved amount). */
  commit(options: CommitOptions): Session {
    if (this.settled) throw new GuardDrainingError('done with this reservation (already committed or cancelled)');
    const id = options.id ?? this.id;
    if (!id) throw new InvalidOptionError('id', 'commit() needs an id: give one to admit() or commit()');
    const session = this.onCommit(this, id, options);
    this.settled = true;
    return session;
  }

  /** Returns the reserved memory (the load failed or was abandoned). Idempotent. */
  cancel(): void {
    if (this.settled) return;
    this.settled = true;
    this.onCancel(this);
  }

  /** `using reservation = await guard.admit(...)`: cancelled at the end of the block unless committed. */
  [Symbol.dispose](): void {
    this.cancel();
  }
}

/**
 * An extra limit on what an admission may take (e.g. a node-wide budget shared with other processes):
 * the bytes it allows now, given what this guard has reserved; null when it has no opinion.
 */
export interface FreeConstraint {
  readonly name: string;
  /** The room it allows, or that and which of its terms set it (e.g. 'node', 'share'). */
  roomBytes(reservedBytes: number): number | { bytes: number; limitedBy: string } | null;
}

export interface FreeFigures {
  /** What an admission could get now (negative when over). */
  free: number;
  /** Free memory on the device less the padding (null without NVML). */
  deviceFree: number | null;
  reserved: number;
  /** The constraint that set `free`: 'quota', 'device' or an extra constraint's name. */
  limitedBy: string;
}

/**
 * Free memory, in one place: min(hard - scope usage - reservations, device free - padding -
 * reservations, every extra constraint). On the ledger (no NVML) scope usage already includes the
 * reservations.
 */
export function freeMemory(input: {
  measurement: Pick<Measurement, 'source' | 'scopeBytes' | 'device'>;
  reservedBytes: number;
  hardBytes: number;
  paddingBytes: number;
  constraints?: readonly FreeConstraint[];
}): FreeFigures {
  const { measurement: m, reservedBytes: reserved } = input;
  let free: number;
  let limitedBy = 'quota';
  let deviceFree: number | null = null;
  if (m.source === 'ledger') {
    free = input.hardBytes - m.scopeBytes;
  } else {
    free = input.hardBytes - m.scopeBytes - reserved;
    const raw = m.device?.memoryFreeBytes ?? null;
    if (raw !== null) {
      deviceFree = raw - input.paddingBytes;
      if (deviceFree - reserved < free) {
        free = deviceFree - reserved;
        limitedBy = 'device';
      }
    }
  }
  for (const constraint of input.constraints ?? []) {
    const room = constraint.roomBytes(reserved);
    if (room === null) continue;
    const bytes = typeof room === 'number' ? room : room.bytes;
    if (bytes < free) {
      free = bytes;
      limitedBy = typeof room === 'number' ? constraint.name : room.limitedBy;
    }
  }
  return { free, deviceFree, reserved, limitedBy };
}

export class Ledger {
  private readonly sessions = new Map<string, Session>();
  private readonly reservations = new Set<Reservation>();
  private readonly constraints: FreeConstraint[] = [];

  /** Adds a session; throws when a live one has the id. */
  add(session: Session): void {
    const existing = this.sessions.get(session.id);
    if (existing && existing.state !== 'removed') {
      session.cancelIdleTimer();
      throw new InvalidOptionError('id', `a session named ${session.id} is already registered`);
    }
    const parent = session.parent;
    if (parent && this.sessions.get(parent.id) !== parent) {
      session.cancelIdleTimer();
      throw new InvalidOptionError('parent', `session ${session.id}: its parent ${parent.id} is not registered with this guard`);
    }
    this.sessions.set(session.id, session);
    session.attach();
  }

  get(id: string): Session | undefined {
    return this.sessions.get(id);
  }

  all(): Session[] {
    return [...this.sessions.values()];
  }

  get size(): number {
    return this.sessions.size;
  }

  /** Forgets the session (it must be disposed already) and its place among its parent's children. */
  remove(session: Session): void {
    if (this.sessions.get(session.id) === session) this.sessions.delete(session.id);
    session.state = 'removed';
    session.detach();
  }

  /** Sum of the resident sessions' declared bytes (loaded, loading, evicting). */
  residentBytes(): number {
    let bytes = 0;
    for (const s of this.sessions.values()) if (s.resident) bytes += s.bytes;
    return bytes;
  }

  /** Sets bytes aside for an admitted load; `commit` must forget() it when it hands over to a session. */
  reserve(
    id: string | undefined,
    bytes: number,
    now: number,
    commit: (r: Reservation, id: string, options: CommitOptions) => Session,
    cancelled?: (r: Reservation) => void,
  ): Reservation {
    const reservation = new Reservation(id, bytes, now, commit, (r) => {
      this.reservations.delete(r);
      cancelled?.(r);
    });
    this.reservations.add(reservation);
    return reservation;
  }

  /** Drops a reservation from the accounting (its commit hands over to a session). */
  forget(reservation: Reservation): void {
    this.reservations.delete(reservation);
  }

  reservedBytes(): number {
    let bytes = 0;
    for (const r of this.reservations) bytes += r.bytes;
    return bytes;
  }

  reservationList(now: number): ReservationInfo[] {
    return [...this.reservations].map((r) => ({ id: r.id, bytes: r.bytes, ageMs: now - r.createdAt }));
  }

  cancelReservations(): void {
    for (const r of [...this.reservations]) r.cancel();
  }

  /** Nothing in flight: no reservation, no use, no load. */
  idle(): boolean {
    if (this.reservations.size > 0) return false;
    for (const s of this.sessions.values()) if (s.busy > 0 || s.state === 'loading') return false;
    return true;
  }

  /** Registers an extra limit on free memory; returns its remover. */
  addConstraint(constraint: FreeConstraint): () => void {
    this.constraints.push(constraint);
    return () => {
      const at = this.constraints.indexOf(constraint);
      if (at >= 0) this.constraints.splice(at, 1);
    };
  }

  /**
   * Free memory once a growth is on the books: `addBytes` more declared bytes, and `reservation` (a
   * commit's) handed over to them. With NVML the growth may already show in the reading: the scope
   * counts at least the declared bytes, never both.
   */
  freeAfter(
    measurement: Measurement,
    change: { addBytes: number; reservation?: Reservation },
    limits: { hardBytes: number; paddingBytes: number },
  ): FreeFigures & { usageBytes: number } {
    const reservedBytes = this.reservedBytes() - (change.reservation && this.reservations.has(change.reservation) ? change.reservation.bytes : 0);
    const declared = this.residentBytes() + change.addBytes;
    const usageBytes = measurement.source === 'ledger' ? declared + reservedBytes : Math.max(measurement.scopeBytes, declared);
    const figures = freeMemory({ measurement: { ...measurement, scopeBytes: usageBytes }, reservedBytes, ...limits, constraints: this.constraints });
    return { ...figures, usageBytes };
  }

  /** What an admission could get now (see freeMemory). */
  free(measurement: Measurement, limits: { hardBytes: number; paddingBytes: number }): FreeFigures {
    return freeMemory({ measurement, reservedBytes: this.reservedBytes(), ...limits, constraints: this.constraints });
  }
}
