// A MIG-enabled GPU for the reader tests (every era with MIG reads it the same way).
import { expect } from 'vitest';

import { type MockDevice, mockDevice } from '../../src/testing';
import type { DeviceSample } from '../../src/types';
import { GiB, MiB } from '../helpers';

export const MIG_A = 'MIG-11111111-2222-3333-4444-555555555555';
export const MIG_B = 'MIG-66666666-7777-8888-9999-000000000000';

/** An 80 GiB GPU in MIG mode: instances at MIG indexes 0 (gi 1, 40 GiB, three processes) and 2 (gi 2, 20 GiB, one). */
export function migGpu(index: number): MockDevice {
  return mockDevice(index, 80, {
    migMode: true,
    migInstances: [
      { uuid: MIG_A, gpuInstanceId: 1, computeInstanceId: 0, memory: { total: 40 * GiB, reserved: 256 * MiB, otherUsed: 64 * MiB } },
      null,
      { uuid: MIG_B, gpuInstanceId: 2, computeInstanceId: 0, memory: { total: 20 * GiB } },
    ],
    processes: [
      { pid: 4101, usedBytes: 3 * GiB, gpuInstanceId: 1, computeInstanceId: 0 },
      { pid: 4102, usedBytes: 5 * GiB, gpuInstanceId: 1, computeInstanceId: 0 },
      { pid: 4103, usedBytes: 1 * GiB, gpuInstanceId: 1, computeInstanceId: 0 },
      { pid: 4201, usedBytes: 7 * GiB, gpuInstanceId: 2, computeInstanceId: 0 },
    ],
  });
}

/** The instances of migGpu() as read: ids, memory (v1 counts the reservation as used) and processes. */
export function expectMigInstances(gpu: DeviceSample, memoryInfoVersion: 1 | 2, processRecordLayout: string): void {
  const mig = gpu.mig!;
  expect(mig.mode).toEqual({ current: 'enabled', pending: 'enabled' });
  expect(mig.missing).toEqual({});
  expect(mig.instances!.map((i) => [i.index, i.uuid, i.gpuInstanceId, i.computeInstanceId])).toEqual([
    [0, MIG_A, 1, 0],
    [2, MIG_B, 2, 0],
  ]);
  const [a, b] = mig.instances!;
  const aUsed = 9 * GiB + 64 * MiB;
  expect(a!.memoryInfoVersion).toBe(memoryInfoVersion);
  expect(a!.memoryTotalBytes).toBe(40 * GiB);
  expect(a!.memoryUsedBytes).toBe(memoryInfoVersion === 2 ? aUsed : aUsed + 256 * MiB);
  expect(a!.memoryFreeBytes).toBe(40 * GiB - 256 * MiB - aUsed);
  expect(a!.memoryReservedBytes).toBe(memoryInfoVersion === 2 ? 256 * MiB : null);
  // Two or more records per list: a wrong stride shows from the second one on.
  expect(a!.processes!.map((p) => [p.pid, p.usedBytes, p.gpuInstanceId, p.computeInstanceId])).toEqual([
    [4101, 3 * GiB, 1, 0],
    [4102, 5 * GiB, 1, 0],
    [4103, 1 * GiB, 1, 0],
  ]);
  expect(a!.processRecordLayout).toBe(processRecordLayout);
  expect(a!.processes![0]!.smUtilizationRatio).toBeNull(); // NVML has no per-process utilization on MIG
  expect(b!.processes!.map((p) => [p.pid, p.usedBytes])).toEqual([[4201, 7 * GiB]]);
  expect(b!.memoryFreeBytes).toBe(13 * GiB);
}
