// The watermark contract against the real Sampler on the mock NVML (the same cases run against
// FakeMonitor).
import { afterAll, beforeAll } from 'vitest';

import { Sampler } from '../../src/sampler';
import { mockDevice, type MockNvml } from '../../src/testing';
import { useMock } from '../helpers';
import { GiB, watermarkContract } from './watermarks';

let mock: MockNvml;
beforeAll(() => {
  mock = useMock({ devices: [mockDevice(0, 80, { memory: { total: 80 * GiB, reserved: 0, otherUsed: 0 } })] });
});
afterAll(() => mock.cleanup());

watermarkContract('Sampler on the mock NVML', async () => {
  const sampler = new Sampler({ interval: '10ms' }).start();
  await sampler.next();
  const expected = new Map<number, number>();
  const matches = () => {
    const processes = sampler.latest()?.devices[0]?.processes ?? [];
    return [...expected].every(([pid, bytes]) => processes.some((p) => p.pid === pid && p.usedBytes === bytes));
  };
  return {
    watch: (spec) => sampler.watch(spec),
    onCrossing: (listener) =>
      sampler.on('watermark', (c) => listener({ id: c.watermark.id, above: c.above, valueBytes: c.valueBytes, thresholdBytes: c.thresholdBytes })),
    setProcess: (pid, bytes) => {
      expected.set(pid, bytes);
      mock.control.setProcess(0, { pid, usedBytes: bytes });
    },
    // Two passes that started after this call (so they saw every watermark change), showing the state set.
    settle: async () => {
      const start = sampler.latest()!.sequence;
      for (;;) {
        const snapshot = await sampler.next();
        if (snapshot.sequence >= start + 2 && matches()) return;
      }
    },
    baseUsedBytes: () => 0,
    close: () => {
      sampler.close();
      for (const pid of expected.keys()) mock.control.removeProcess(pid, 0);
    },
  };
});
