// MIG on the default (580) era: unprivileged parents, a disabled mode, failed enumeration. Every era's
// enumeration is checked in eras/ (one NVML library per process).
import { existsSync } from 'node:fs';
import { join } from 'node:path';

import { afterEach, expect, it } from 'vitest';

import { InvalidOptionError } from '../../src/errors';
import * as nvml from '../../src/nvml';
import { Sampler, type WatermarkCrossing } from '../../src/sampler';
import { MockControl, type MockNvml, mockDevice, readMockStats } from '../../src/testing';
import { GiB, MiB, useMock, waitFor } from '../helpers';
import { expectMigInstances, MIG_A, MIG_B, migGpu } from './mig-scenario';

let mock: MockNvml | undefined;
afterEach(() => {
  mock?.cleanup();
  mock = undefined;
});

it('enumerates the MIG devices; a GPU that cannot do MIG says NOT_SUPPORTED; the parent reports the board', () => {
  mock = useMock({ devices: [mockDevice(0), migGpu(1)] });
  const [plain, gpu] = nvml.readOnce().snapshot.devices;
  expect(plain!.mig).toBeNull();
  expect(plain!.missing.mig).toMatchObject({ code: 'NOT_SUPPORTED', function: 'nvmlDeviceGetMigMode' });
  expectMigInstances(gpu!, 2, 'detail-list-v1');
  // The board's memory is the aggregate: every process, and what MIG device 0 uses besides them.
  expect(gpu!.memoryTotalBytes).toBe(80 * GiB);
  expect(gpu!.memoryUsedBytes).toBe(16 * GiB + 64 * MiB);
  expect(gpu!.memoryFreeBytes).toBe(80 * GiB - 512 * MiB - (16 * GiB + 64 * MiB));
  expect(gpu!.processes!.map((p) => [p.pid, p.gpuInstanceId])).toEqual([
    [4101, 1],
    [4102, 1],
    [4103, 1],
    [4201, 2],
  ]);
});

it('unprivileged: the parent says NO_PERMISSION for memory and processes, the instances still read', () => {
  mock = useMock({ unprivileged: true, devices: [migGpu(0)] });
  const gpu = nvml.readOnce().snapshot.devices[0]!;
  expect(gpu.lost).toBe(false);
  expect(gpu.memoryUsedBytes).toBeNull();
  expect(gpu.missing.memoryUsedBytes).toMatchObject({ code: 'NO_PERMISSION' });
  expect(gpu.processes).toBeNull();
  expect(gpu.missing.processes).toMatchObject({ code: 'NO_PERMISSION' });
  expectMigInstances(gpu, 2, 'detail-list-v1');
});

it('MIG disabled on a capable GPU: the mode, no instances', () => {
  mock = useMock({ devices: [{ ...migGpu(0), migMode: false, processes: [] }] });
  const gpu = nvml.readOnce().snapshot.devices[0]!;
  expect(gpu.mig).toEqual({ mode: { current: 'disabled', pending: 'disabled' }, instances: [], missing: {} });
  expect(gpu.missing.mig).toBeUndefined();
});

it('an enumeration that fails says why instead of listing nothing', () => {
  mock = useMock({ devices: [migGpu(0)], errors: [{ function: 'nvmlDeviceGetMigDeviceHandleByIndex', return: 'UNKNOWN' }] });
  const mig = nvml.readOnce().snapshot.devices[0]!.mig!;
  expect(mig.mode.current).toBe('enabled');
  expect(mig.instances).toBeNull();
  expect(mig.missing.instances).toMatchObject({ code: 'UNKNOWN', function: 'nvmlDeviceGetMigDeviceHandleByIndex' });
});

it('a GPU lost during the MIG reads is lost as a whole, with the call that found it', () => {
  mock = useMock({ devices: [mockDevice(0), migGpu(1)], errors: [{ function: 'nvmlDeviceGetComputeInstanceId', return: 'GPU_IS_LOST' }] });
  const [plain, gpu] = nvml.readOnce().snapshot.devices;
  expect(plain!.lost).toBe(false);
  expect(gpu!.lost).toBe(true);
  expect(gpu!.lostReason).toMatchObject({ code: 'GPU_IS_LOST', function: 'nvmlDeviceGetComputeInstanceId' });
  expect(gpu!.mig).toBeNull();
  expect(gpu!.memoryTotalBytes).toBeNull();
});

it('a Sampler given a MIG- UUID shows that MIG device in its GPU\'s place; its watermarks sum the MIG device', async () => {
  mock = useMock({ devices: [mockDevice(0), migGpu(1)] });
  const sampler = new Sampler({ interval: '10ms', devices: [MIG_B.toLowerCase()] }).start();
  try {
    expect(sampler.devices).toEqual([1]);
    expect([...sampler.migDevices]).toEqual([[1, MIG_B]]);
    const view = (await sampler.next()).devices[0]!;
    expect(view).toMatchObject({ index: 1, uuid: MIG_B, migParentUuid: migGpu(1).uuid, memoryTotalBytes: 20 * GiB, memoryUsedBytes: 7 * GiB });
    expect(view.processes!.map((p) => p.pid)).toEqual([4201]);
    // 8 GiB: far below the board's used bytes (16 GiB), above the MIG device's once it grows by 2 GiB.
    const crossings: WatermarkCrossing[] = [];
    sampler.on('watermark', (c) => crossings.push(c));
    sampler.watch({ device: 1, thresholdBytes: 8 * GiB });
    await sampler.next();
    await sampler.next();
    expect(crossings).toEqual([]);
    new MockControl(mock.controlPath).setProcess(1, { pid: 4202, usedBytes: 2 * GiB, gpuInstanceId: 2, computeInstanceId: 0 });
    await waitFor(sampler, () => crossings.length > 0);
    expect(crossings[0]).toMatchObject({ device: 1, valueBytes: 9 * GiB, above: true });
  } finally {
    sampler.close();
  }
});

it('a Sampler refuses a GPU named twice as different views (the board and a MIG device, or two MIG devices)', () => {
  mock = useMock({ devices: [migGpu(0)] });
  for (const devices of [[0, MIG_A], [MIG_A, MIG_B]]) {
    expect(() => new Sampler({ devices }).start()).toThrow(InvalidOptionError);
  }
  expect(() => new Sampler({ devices: [MIG_A, 'mig-x'] }).start()).toThrow(/no MIG device mig-x/);
});

it('cost: a GPU that cannot do MIG is asked once; a MIG-capable one with MIG off once per pass, nothing more', async () => {
  const capable = { ...mockDevice(1), migMode: false };
  mock = useMock({ devices: [mockDevice(0), capable, mockDevice(2), mockDevice(3)] });
  const sampler = new Sampler({ interval: '10ms' }).start();
  try {
    const statsPath = join(mock.scenarioPath, '..', 'stats.json');
    const stats = async () => {
      mock!.control.requestStats(statsPath);
      await waitFor(sampler, () => existsSync(statsPath) && readMockStats(statsPath) !== undefined);
      const s = readMockStats(statsPath)!;
      return { passes: s.calls.nvmlDeviceGetMemoryInfo_v2 ?? 0, mode: s.calls.nvmlDeviceGetMigMode ?? 0, count: s.calls.nvmlDeviceGetMaxMigDeviceCount ?? 0, handles: s.calls.nvmlDeviceGetMigDeviceHandleByIndex ?? 0 };
    };
    await sampler.next();
    const before = await stats();
    await waitFor(sampler, (snap) => snap.sequence > 10);
    const after = await stats();
    // nvmlDeviceGetMemoryInfo_v2 is called once per device per pass: 4 per pass (the stats may be written
    // mid-pass: one call either way at each end).
    const passes = (after.passes - before.passes) / 4;
    expect(passes).toBeGreaterThanOrEqual(5);
    const asked = after.mode - before.mode; // the capable GPU only: all four would ask 4 times as often
    expect(asked).toBeGreaterThanOrEqual(Math.floor(passes) - 1);
    expect(asked).toBeLessThanOrEqual(Math.ceil(passes) + 1);
    expect(after.count - before.count).toBe(0);
    expect(after.handles - before.handles).toBe(0);
  } finally {
    sampler.close();
  }
});
