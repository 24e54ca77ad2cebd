// The guard's reaction time: from a soft-limit crossing made through the mock's live control (the
// moment the control line is written) to the first releaser call, at a 10 ms interval. Shared by the
// guard suite and by bench/guard-compare.mjs's child processes.
import { setTimeout as sleep } from 'node:timers/promises';

const GiB = 2 ** 30;

async function until(predicate, what, timeoutMs = 5000) {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`bench: timed out waiting for ${what}`);
    await sleep(1);
  }
}

/** Milliseconds from each of `crossings` crossings to the releaser call. */
export async function measureReaction(vramguard, testing, crossings) {
  const { VramGuard } = vramguard;
  const mock = testing.createMockNvml({
    devices: [testing.mockDevice(0, 24, { processes: [{ pid: process.pid, usedBytes: 2 * GiB }] })],
  });
  mock.activate();
  const guard = new VramGuard({ quota: { soft: '8GiB', hard: '12GiB' }, interval: '10ms', hysteresis: '1GiB' });
  let crossedAt = 0;
  let pending = false;
  const reactions = [];
  guard.addReleaser('bench', () => {
    if (!pending) return;
    reactions.push(performance.now() - crossedAt);
    pending = false;
    mock.control.setProcess(0, { pid: process.pid, usedBytes: 2 * GiB });
  });
  try {
    await until(() => guard.health().state === 'ready', 'the guard to be ready');
    for (let i = 0; i < crossings; i += 1) {
      // Random phase against the sampler's ticks, then cross.
      await sleep(5 + Math.random() * 15);
      pending = true;
      crossedAt = performance.now();
      mock.control.setProcess(0, { pid: process.pid, usedBytes: 9 * GiB });
      await until(() => !pending, 'the releaser');
      await until(() => guard.status().usage.scopeBytes < 8 * GiB, 'usage to fall back');
      await sleep(25); // let the watermark see the fall (a new crossing needs it below first)
    }
  } finally {
    await guard.close();
    mock.cleanup();
  }
  return reactions;
}
