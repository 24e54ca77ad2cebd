// Every driver era, each in its own process (one NVML library per process), each with at least two
// processes per list: the record stride bugs (16/24/32 bytes) only show once a second record is decoded.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import * as nvml from '../../../src/nvml';
import { mockDevice, type MockEra, type MockNvml } from '../../../src/testing';
import { GiB, useMock } from '../../helpers';
import { expectMigInstances, migGpu } from '../mig-scenario';

export interface EraExpectations {
  driverVersion: string;
  cudaDriverVersion: string;
  processRecordLayout: string;
  memoryInfoVersion: 1 | 2;
  /** MIG instance ids come with the _v2 records on. */
  instanceIds: boolean;
  /** Symbols this era's library must lack (absent from dlsym, not FUNCTION_NOT_FOUND). */
  absent: string[];
  present: string[];
}

const MiB = 2 ** 20;
const reserved = 300 * MiB;
const otherUsed = 100 * MiB;
const expectedPids = [
  [4242, 3 * GiB, ['compute']],
  [4343, 5 * GiB, ['compute']],
  [4444, 1 * GiB, ['compute', 'graphics']],
  [4545, 2 * GiB, ['mps']],
  [4646, 256 * MiB, ['mps']],
] as const;
const processBytes = 11 * GiB + 256 * MiB;

export function checkEra(era: MockEra, expected: EraExpectations): void {
  let mock: MockNvml;
  beforeAll(() => {
    mock = useMock({
      era,
      devices: [
        mockDevice(0, 24, {
          memory: { total: 24 * GiB, reserved, otherUsed },
          processes: [
            { pid: 4242, usedBytes: 3 * GiB, type: 'compute', gpuInstanceId: 1, computeInstanceId: 0 },
            { pid: 4343, usedBytes: 5 * GiB, type: 'compute', gpuInstanceId: 2, computeInstanceId: 0 },
            { pid: 4444, usedBytes: 1 * GiB, type: 'compute+graphics', gpuInstanceId: 2, computeInstanceId: 1 },
            { pid: 4545, usedBytes: 2 * GiB, type: 'mps' },
            { pid: 4646, usedBytes: 256 * MiB, type: 'mps' },
          ],
        }),
        migGpu(1),
      ],
    });
  });
  afterAll(() => mock.cleanup());

  describe(`driver era ${era}`, () => {
    it('exports what that driver exports', () => {
      const probe = nvml.probe();
      for (const name of expected.absent) expect(probe.symbols[name], name).toBe(false);
      for (const name of expected.present) expect(probe.symbols[name], name).toBe(true);
    });

    it('reports its driver and CUDA versions', () => {
      const { system } = nvml.readOnce();
      expect(system.driverVersion).toBe(expected.driverVersion);
      expect(system.cudaDriverVersion).toBe(expected.cudaDriverVersion);
    });

    it('decodes every process with the right record layout and memory version', () => {
      const d = nvml.readOnce().snapshot.devices[0]!;
      expect(d.processRecordLayout).toBe(expected.processRecordLayout);
      expect(d.processes!.map((p) => [p.pid, p.usedBytes, p.types])).toEqual(expectedPids);
      expect(d.memoryInfoVersion).toBe(expected.memoryInfoVersion);
      if (expected.memoryInfoVersion === 2) {
        expect(d.memoryUsedBytes).toBe(processBytes + otherUsed);
        expect(d.memoryReservedBytes).toBe(reserved);
      } else {
        expect(d.memoryUsedBytes).toBe(processBytes + otherUsed + reserved); // v1: used includes the reservation
        expect(d.memoryReservedBytes).toBeNull();
        expect(d.missing.memoryReservedBytes).toMatchObject({ code: 'FUNCTION_NOT_FOUND' });
      }
      const ids = d.processes!.slice(0, 3).map((p) => [p.gpuInstanceId, p.computeInstanceId]);
      expect(ids).toEqual(
        expected.instanceIds
          ? [
              [1, 0],
              [2, 0],
              [2, 1],
            ]
          : [
              [null, null],
              [null, null],
              [null, null],
            ],
      );
    });

    it(expected.absent.includes('nvmlDeviceGetMigMode') ? 'has no MIG: the reason is the missing symbol' : 'reads each MIG device through its own handle', () => {
      const gpu = nvml.readOnce().snapshot.devices[1]!;
      if (expected.absent.includes('nvmlDeviceGetMigMode')) {
        expect(gpu.mig).toBeNull();
        expect(gpu.missing.mig).toMatchObject({ code: 'FUNCTION_NOT_FOUND', function: 'nvmlDeviceGetMigMode' });
        return;
      }
      expectMigInstances(gpu, expected.memoryInfoVersion, expected.processRecordLayout);
    });
  });
}
