// Every driver era, each with at least two processes per list: the record stride bugs (16/24/32
// bytes) only show once a second record is decoded.
import { afterEach, describe, expect, it } from 'vitest';

import * as nvml from '../../src/nvml';
import { mockDevice, type MockEra, type MockNvml } from '../../src/testing';
import { GiB, useMock } from '../helpers';

let mock: MockNvml | undefined;
afterEach(() => mock?.cleanup());

function readEra(era: MockEra, driverVersion?: string) {
  mock = useMock({
    era,
    driverVersion,
    devices: [
      mockDevice(0, 24, {
        memory: { total: 24 * GiB, reserved: 300 * 2 ** 20, otherUsed: 100 * 2 ** 20 },
        processes: [
          { pid: 4242, usedBytes: 3 * GiB, type: 'compute', gpuInstanceId: 1, computeInstanceId: 0 },
          { pid: 4343, usedBytes: 5 * GiB, type: 'compute', gpuInstanceId: 2, computeInstanceId: 0 },
          { pid: 4444, usedBytes: 1 * GiB, type: 'compute+graphics', gpuInstanceId: 2, computeInstanceId: 1 },
          { pid: 4545, usedBytes: 2 * GiB, type: 'mps' },
          { pid: 4646, usedBytes: 256 * 2 ** 20, type: 'mps' },
        ],
      }),
    ],
  });
  return nvml.readOnce().snapshot.devices[0]!;
}

const expectedPids = [
  [4242, 3 * GiB, ['compute']],
  [4343, 5 * GiB, ['compute']],
  [4444, 1 * GiB, ['compute', 'graphics']],
  [4545, 2 * GiB, ['mps']],
  [4646, 256 * 2 ** 20, ['mps']],
] as const;

function expectProcesses(device: ReturnType<typeof readEra>) {
  expect(device.processes!.map((p) => [p.pid, p.usedBytes, p.types])).toEqual(expectedPids);
}

const processBytes = 11 * GiB + 256 * 2 ** 20;
const otherUsed = 100 * 2 ** 20;
const reserved = 300 * 2 ** 20;

describe('driver eras', () => {
  it('current: memory v2 and 24-byte _v3 records', () => {
    const d = readEra('current');
    expect(d.processRecordLayout).toBe('v3');
    expect(d.memoryInfoVersion).toBe(2);
    expect(d.memoryUsedBytes).toBe(processBytes + otherUsed);
    expect(d.memoryReservedBytes).toBe(reserved);
    expect(d.memoryFreeBytes).toBe(24 * GiB - reserved - processBytes - otherUsed);
    expectProcesses(d);
    expect(d.processes!.map((p) => [p.gpuInstanceId, p.computeInstanceId]).slice(0, 3)).toEqual([
      [1, 0],
      [2, 0],
      [2, 1],
    ]);
  });

  it('535.43-535.86: 32-byte _v3 records decoded with the right stride', () => {
    const d = readEra('v3-32', '535.54.03');
    expect(d.processRecordLayout).toBe('v3-535-32byte');
    expectProcesses(d);
    expect(d.processes![1]).toMatchObject({ gpuInstanceId: 2, computeInstanceId: 0 });
  });

  it('535.104 and later: 24-byte records again', () => {
    const d = readEra('current', '535.104.05');
    expect(d.processRecordLayout).toBe('v3');
    expectProcesses(d);
  });

  it('no memory v2: falls back to v1, whose used includes the reservation', () => {
    const d = readEra('no-memory-v2');
    expect(d.memoryInfoVersion).toBe(1);
    expect(d.memoryUsedBytes).toBe(processBytes + otherUsed + reserved);
    expect(d.memoryFreeBytes).toBe(24 * GiB - processBytes - otherUsed - reserved);
    expect(d.memoryReservedBytes).toBeNull();
    expect(d.missing.memoryReservedBytes).toMatchObject({ code: 'FUNCTION_NOT_FOUND' });
    expect(d.processRecordLayout).toBe('v3');
    expectProcesses(d);
  });

  it('v1 only: 16-byte records, no instance ids, CUDA version from the v1 call', () => {
    const d = readEra('v1-only');
    expect(d.processRecordLayout).toBe('v1');
    expect(d.memoryInfoVersion).toBe(1);
    expectProcesses(d);
    expect(d.processes!.every((p) => p.gpuInstanceId === null && p.computeInstanceId === null)).toBe(true);
    expect(nvml.readOnce().system.cudaDriverVersion).toBe('12.4');
  });
});

describe('buffers', () => {
  it('grow on INSUFFICIENT_SIZE: 150 processes with utilization on one device', () => {
    const processes = Array.from({ length: 150 }, (_, i) => ({
      pid: 10_000 + i,
      usedBytes: (i + 1) * 2 ** 20,
      type: (['compute', 'graphics', 'mps', 'compute+graphics'] as const)[i % 4],
      smUtilPercent: (i % 100) + 1,
    }));
    mock = useMock({ processUtilizationPeriodMs: 1, devices: [mockDevice(0, 80, { processes })] });
    const d = nvml.readOnce().snapshot.devices[0]!;
    expect(d.missing).toEqual({});
    expect(d.processes).toHaveLength(150);
    expect(d.processes!.map((p) => p.pid)).toEqual(processes.map((p) => p.pid));
    expect(d.processes!.map((p) => p.usedBytes)).toEqual(processes.map((p) => p.usedBytes));
    expect(d.processes!.map((p) => p.smUtilizationRatio)).toEqual(processes.map((p) => p.smUtilPercent / 100));
    expect(d.processes![3]!.types).toEqual(['compute', 'graphics']);
  });
});
