// The path every runtime adapter takes for a first load: admit the estimate, load, commit the bytes
// the load measured; a failed load gives the reservation back, a failed commit disposes the load.
import type { Reservation, Session, VramGuard } from '../guard';

export interface AdmittedLoad {
  guard: VramGuard;
  id: string;
  estimatedBytes: number;
  /** Loads; resolves to the bytes to commit. */
  load: () => Promise<number>;
  /**
   * Registers the session. The one place commit happens: once the guard re-checks commits above
   * their reservation (and knows parent sessions), that applies here for every adapter.
   */
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
