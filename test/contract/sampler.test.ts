// The watermark contract against the real Sampler on the mock NVML (the same cases run against
// FakeMonitor).
import { afterAll, beforeAll } from 'vitest';

import { Sampler } from '../../src/sampler';
import { mockDevice, type MockNvml } from '../../src/testing';
import { useMock } from '../helpers';
import { MIG_A, MIG_GPU, mockMigGpu } from './mig-cases';
import { GiB, watermarkContract } from './watermarks';

let mock: MockNvml;
beforeAll(() => {
  mock = useMock({ devices: [mockDevice(0, 80, { memory: { total: 80 * GiB, reserved: 0, otherUsed: 0 } }), mockMigGpu()] });
});
afterAll(() => mock.cleanup());

watermarkContract('Sampler on the mock NVML', async () => {
  const sampler = new Sampler({ interval: '10ms' }).start();
  await sampler.next();
  const expected = new Map<number, number>();
  const expectedMig = new Map<number, number>();
  const shows = (processes: ReadonlyArray<{ pid: number; usedBytes: number | null }>, wanted: Map<number, number>) =>
    [...wanted].every(([pid, bytes]) => processes.some((p) => p.pid === pid && p.usedBytes === bytes));
  const matches = () => {
    const devices = sampler.latest()?.devices ?? [];
    const migA = devices[MIG_GPU]?.mig?.instances?.find((i) => i.uuid === MIG_A);
    return shows(devices[0]?.processes ?? [], expected) && shows(migA?.processes ?? [], expectedMig);
  };
  return {
    monitor: sampler,
    watch: (spec) => sampler.watch(spec),
    onCrossing: (listener) =>
      sampler.on('watermark', (c) => listener({ id: c.watermark.id, above: c.above, valueBytes: c.valueBytes, thresholdBytes: c.thresholdBytes })),
    setProcess: (pid, bytes) => {
      expected.set(pid, bytes);
      mock.control.setProcess(0, { pid, usedBytes: bytes });
    },
    setMigProcess: (pid, bytes) => {
      expectedMig.set(pid, bytes);
      mock.control.setProcess(MIG_GPU, { pid, usedBytes: bytes, gpuInstanceId: 1, computeInstanceId: 0 });
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
      for (const pid of expectedMig.keys()) mock.control.removeProcess(pid, MIG_GPU);
    },
  };
});
