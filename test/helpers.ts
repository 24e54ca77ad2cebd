// Shared test helpers: scenarios on the mock NVML and waiting on samplers.
import { createMockNvml, mockDevice, type MockNvml, type MockScenario } from '../src/testing';
import type { Sampler } from '../src/sampler';
import type { Snapshot } from '../src/types';
import { expect } from 'vitest';

export const GiB = 2 ** 30;
export const MiB = 2 ** 20;

/** `missing` of a healthy device on a GPU that cannot do MIG: only `mig` is absent, and says why. */
export const NOT_MIG_CAPABLE = { mig: expect.objectContaining({ code: 'NOT_SUPPORTED', function: 'nvmlDeviceGetMigMode' }) };

/** Writes the scenario, points this process at the mock and returns it; call cleanup() after. */
export function useMock(scenario: MockScenario, options: { legacy?: boolean } = {}): MockNvml {
  const mock = createMockNvml(scenario, options);
  mock.activate();
  return mock;
}

/** Two H100s with two processes each (compute and compute+graphics), every field set. */
export function twoGpuScenario(): MockScenario {
  return {
    driverVersion: '550.54.15',
    nvmlVersion: '12.550.54.15',
    cudaDriverVersion: 12040,
    processUtilizationPeriodMs: 20,
    devices: [
      mockDevice(0, 80, {
        utilization: { gpuPercent: 35, memoryPercent: 12 },
        temperatureCelsius: 41,
        power: { usageMilliwatts: 123_456, limitMilliwatts: 700_000 },
        clocks: { smMhz: 1980, memoryMhz: 2619 },
        processes: [
          { pid: 1001, usedBytes: 4 * GiB, type: 'compute', smUtilPercent: 30, memUtilPercent: 10 },
          { pid: 1002, usedBytes: 2 * GiB, type: 'compute+graphics', smUtilPercent: 5, memUtilPercent: 1 },
        ],
      }),
      mockDevice(1, 80, {
        processes: [
          { pid: 2001, usedBytes: 8 * GiB, type: 'compute' },
          { pid: 2002, usedBytes: null, type: 'graphics' },
        ],
      }),
    ],
  };
}

/** Waits until predicate(latest snapshot) holds, polling on the sampler's own passes. */
export async function waitFor(
  sampler: Sampler,
  predicate: (snapshot: Snapshot) => boolean,
  timeoutMs = 5000,
): Promise<Snapshot> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const snapshot = await sampler.next();
    if (predicate(snapshot)) return snapshot;
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
  }
}
