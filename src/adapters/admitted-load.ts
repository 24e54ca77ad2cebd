// The paths every runtime adapter takes. A first load: admit the estimate, load, commit the bytes the
// load measured (the guard re-checks a commit above its reservation); a failed load gives the
// reservation back, a failed commit disposes the load. A reload: load, then resize the session to what
// it measured (the guard re-checks growth); a refused resize disposes the load. Growth after a load
// (measured over the first use): booked by resize, given back by unloading when refused.
import { VramQuotaError } from '../errors';
import type { Reservation, Session, VramGuard } from '../guard';

export interface AdmittedLoad {
  guard: VramGuard;
  id: string;
  estimatedBytes: number;
  /** Loads; resolves to the bytes to commit. */
  load: () => Promise<number>;
  /** Registers the session (reservation.commit with the adapter's options, its parent if any). */
  commit: (reservation: Reservation, bytes: number) => Session;
  /** Undoes the load when the commit fails. */
  dispose: () => Promise<void>;
}

export async function admittedLoad(step: AdmittedLoad): Promise<Session> {
  const reservation = await step.guard.admit(step.estimatedBytes, { id: step.id });
  let bytes: number;
  try {
    bytes = await step.load();
  } catch (error) {
    reservation.cancel();
    throw error;
  }
  try {
    return step.commit(reservation, bytes);
  } catch (error) {
    reservation.cancel();
    await step.dispose();
    throw error;
  }
}

/**
 * A session's reload (its `load`, called by the guard after admitting its bytes): loads, then tells
 * the guard what the load measured. A growth the guard refuses (VramQuotaError) disposes the load.
 */
export async function resizedReload(session: Session, load: () => Promise<number>, dispose: () => Promise<void>): Promise<void> {
  const bytes = await load();
  try {
    await session.resize(bytes);
  } catch (error) {
    await dispose();
    throw error;
  }
}

/**
 * What a session holds grew after its load (a context's first evaluation, an arena's first run): the
 * guard re-checks the growth (relief when it crosses soft). A growth it refuses gives the memory back
 * by unloading the session (the refusal is the guard's 'grow' and 'refuse' events); it reloads on its
 * next use. Smaller figures are left to the next reload's measurement.
 */
export async function bookGrowth(session: Session, bytes: number, unload: () => Promise<boolean>): Promise<void> {
  if (!(bytes > session.bytes)) return;
  try {
    await session.resize(bytes);
  } catch (error) {
    if (!(error instanceof VramQuotaError)) throw error;
    await unload();
  }
}
