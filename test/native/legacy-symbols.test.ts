// The oldest era's library (418) lacks the versioned symbols altogether: optional symbols become
// capability flags and the readers fall back. Runs in its own process: one NVML library per process.
import { afterAll, beforeAll, expect, it } from 'vitest';

import * as nvml from '../../src/nvml';
import { Sampler } from '../../src/sampler';
import { mockDevice, type MockNvml } from '../../src/testing';
import { GiB, useMock } from '../helpers';

let mock: MockNvml;
beforeAll(() => {
  mock = useMock(
    {
      devices: [
        mockDevice(0, 16, {
          processes: [
            { pid: 11, usedBytes: 1 * GiB, type: 'compute' },
            { pid: 12, usedBytes: 2 * GiB, type: 'compute' },
          ],
        }),
      ],
    },
    { legacy: true },
  );
});
afterAll(() => mock.cleanup());

it('reports absent symbols as capabilities and reads through the v1 entry points', async () => {
  const probe = nvml.probe();
  expect(probe.symbols.nvmlDeviceGetMemoryInfo_v2).toBe(false);
  expect(probe.symbols.nvmlDeviceGetComputeRunningProcesses_v3).toBe(false);
  expect(probe.symbols.nvmlDeviceGetComputeRunningProcesses).toBe(true);
  expect(probe.capabilities).toMatchObject({ memoryInfoV2: false, processListV3: false, processListV2: false });
  const sampler = new Sampler({ interval: '10ms' }).start();
  try {
    const d = (await sampler.next()).devices[0]!;
    expect(d.memoryInfoVersion).toBe(1);
    expect(d.processRecordLayout).toBe('v1');
    expect(d.processes!.map((p) => [p.pid, p.usedBytes])).toEqual([
      [11, 1 * GiB],
      [12, 2 * GiB],
    ]);
    expect(sampler.system?.cudaDriverVersion).toBe('10.1');
  } finally {
    sampler.close();
  }
});
