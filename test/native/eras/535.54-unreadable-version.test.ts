// A 535.54 driver whose version string cannot be read: the exported symbols alone decide the 32-byte
// _v3 records (nvmlDeviceGetConfComputeMemSizeInfo present, nvmlDeviceGetRunningProcessDetailList absent).
import { afterAll, beforeAll, expect, it } from 'vitest';

import * as nvml from '../../../src/nvml';
import { mockDevice, type MockNvml } from '../../../src/testing';
import { GiB, useMock } from '../../helpers';

let mock: MockNvml;
beforeAll(() => {
  mock = useMock({
    era: '535.54',
    errors: [{ function: 'nvmlSystemGetDriverVersion', return: 'UNKNOWN' }],
    devices: [
      mockDevice(0, 24, {
        processes: [
          { pid: 31, usedBytes: 1 * GiB, gpuInstanceId: 3, computeInstanceId: 1 },
          { pid: 32, usedBytes: 2 * GiB },
          { pid: 33, usedBytes: 3 * GiB },
        ],
      }),
    ],
  });
});
afterAll(() => mock.cleanup());

it('decodes 32-byte records, decided from the exported symbols', () => {
  const { system, snapshot } = nvml.readOnce();
  expect(system.driverVersion).toBeNull();
  expect(system.v3ProcessRecordBytes).toBe(32);
  expect(system.v3ProcessRecordEvidence).toMatch(/^exported symbols \(nvmlDeviceGetConfComputeMemSizeInfo without .*driver version unreadable$/);
  const d = snapshot.devices[0]!;
  expect(d.processRecordLayout).toBe('v3-535-32byte');
  expect(d.processes!.map((p) => [p.pid, p.usedBytes, p.gpuInstanceId])).toEqual([
    [31, 1 * GiB, 3],
    [32, 2 * GiB, null],
    [33, 3 * GiB, null],
  ]);
});
