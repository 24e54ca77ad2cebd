// A guard on a fake monitor and a fake clock: the monitor publishes every 100 ms of fake time, and
// "models" are bytes held by our (fake) pid that their dispose gives back.
import { type GuardOptions, VramGuard } from '../../src/guard';
import type { Session } from '../../src/guard/sessions';
import { FakeClock, FakeMonitor } from '../../src/testing';

export const GiB = 2 ** 30;
export const OUR_PID = 1001;
/** A pid that exists in every PID namespace (init): "someone else's" process. */
export const OTHER_PID = 1;

export interface Harness {
  guard: VramGuard;
  monitor: FakeMonitor;
  clock: FakeClock;
  /** Bytes our pid holds, per model. */
  held: Map<string, number>;
  /** Registers a loaded model holding gib of our pid's memory; its dispose gives it back. */
  model(id: string, gib: number, options?: Partial<Parameters<VramGuard['sessions']['register']>[1]>): Session;
  /** Adds memory to our pid that no session accounts for (a leak, a cache). */
  leak(gib: number): void;
  disposed: string[];
  advance(ms: number): Promise<void>;
}

export function harness(options: GuardOptions & { totalGiB?: number; publishEveryMs?: number } = {}): Harness {
  const clock = new FakeClock();
  const monitor = new FakeMonitor([{ totalBytes: (options.totalGiB ?? 80) * GiB, processes: { [OTHER_PID]: 2 * GiB } }]);
  const held = new Map<string, number>();
  let leaked = 0;
  const sync = () => monitor.setProcess(0, OUR_PID, [...held.values()].reduce((a, b) => a + b, 0) + leaked);
  const every = options.publishEveryMs ?? 100;
  const publish = () => {
    monitor.publish();
    clock.setTimer(publish, every);
  };
  clock.setTimer(publish, every);
  const guard = new VramGuard({
    scope: { pids: [OUR_PID] },
    quota: { soft: '20GiB', hard: '22GiB' },
    hysteresis: '1GiB',
    ...options,
    monitor,
    clock,
  });
  const disposed: string[] = [];
  return {
    guard,
    monitor,
    clock,
    held,
    disposed,
    model(id, gib, extra = {}) {
      held.set(id, gib * GiB);
      sync();
      return guard.sessions.register(id, {
        bytes: gib * GiB,
        dispose: () => {
          disposed.push(id);
          held.delete(id);
          sync();
        },
        ...extra,
      });
    },
    leak(gib) {
      leaked += gib * GiB;
      sync();
    },
    advance: (ms) => clock.advance(ms),
  };
}
