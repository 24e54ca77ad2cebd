// Time as the guard sees it: injectable so tests drive it with a fake clock.
import { TimeoutError } from '../errors';

export interface TimerHandle {
  cancel(): void;
}

export interface Clock {
  /** Milliseconds, monotonic enough for TTLs and slopes. */
  now(): number;
  /** Runs fn after ms; the timer never keeps the process alive by itself. */
  setTimer(fn: () => void, ms: number): TimerHandle;
}

/** The process's time origin, read once (each read of performance.timeOrigin is a checked getter call). */
const timeOrigin = performance.timeOrigin;

export const systemClock: Clock = {
  now: () => timeOrigin + performance.now(),
  setTimer(fn, ms) {
    const timer = setTimeout(fn, Math.max(0, ms));
    timer.unref();
    return { cancel: () => clearTimeout(timer) };
  },
};

/**
 * Runs fn, resolving to what it resolved to; rejects with TimeoutError when it takes longer than
 * timeoutMs (fn itself is left behind).
 */
export async function withTimeout(clock: Clock, fn: () => unknown, timeoutMs: number, what: string): Promise<unknown> {
  let timer: TimerHandle | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = clock.setTimer(() => reject(new TimeoutError(what, timeoutMs)), timeoutMs);
  });
  try {
    return await Promise.race([Promise.resolve().then(fn), timeout]);
  } finally {
    timer?.cancel();
  }
}

/** Waits for promise (its rejection ignored) or ms, whichever is first; the timer never lingers. */
export async function waitAtMost(clock: Clock, promise: Promise<unknown>, ms: number): Promise<void> {
  let timer: TimerHandle | undefined;
  const timeout = new Promise<void>((resolve) => {
    timer = clock.setTimer(resolve, ms);
  });
  try {
    await Promise.race([promise.catch(() => undefined), timeout]);
  } finally {
    timer?.cancel();
  }
}
