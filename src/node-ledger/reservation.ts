// A reservation on the node, as admit() hands it out.
import type { DeclaredSession } from './entry';

/** A reservation on the node: counts for every participant until commit() or cancel(). */
export class NodeReservation {
  private settled = false;
  constructor(
    private readonly settle: (id: string, session: DeclaredSession | null) => Promise<void>,
    readonly id: string,
    readonly bytes: number,
  ) {}

  /** Turns the reservation into a declared session, in one write (no moment where it counts nowhere). */
  commit(session: Partial<DeclaredSession> = {}): Promise<void> {
    if (this.settled) return Promise.resolve();
    this.settled = true;
    return this.settle(this.id, { id: session.id ?? this.id, bytes: session.bytes ?? this.bytes, releasable: session.releasable ?? false });
  }

  /** Returns the reserved bytes to the node. Idempotent. */
  cancel(): Promise<void> {
    if (this.settled) return Promise.resolve();
    this.settled = true;
    return this.settle(this.id, null);
  }
}
