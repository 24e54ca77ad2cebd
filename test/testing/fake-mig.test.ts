// FakeMonitor's MIG devices beyond the shared contract (test/contract): a MIG list that cannot be read,
// MIG disabled, a lost GPU, a reconfiguration, and the errors for a bad or unknown MIG UUID.
import { expect, it } from 'vitest';

import { attributedProcesses } from '../../src/mig';
import { FakeMonitor } from '../../src/testing';

const GiB = 2 ** 30;
const MIG = 'MIG-12345678-0000-4000-8000-000000000001';

function monitor(): FakeMonitor {
  return new FakeMonitor([{ totalBytes: 80 * GiB, processes: { 100: GiB }, mig: { instances: [{ uuid: MIG, gpuInstanceId: 3, computeInstanceId: 1, totalBytes: 20 * GiB, otherUsedBytes: GiB, processes: { 200: 2 * GiB } }] } }]);
}

it("counts a MIG device's memory and processes on its GPU too, as a privileged reader sees them", () => {
  const m = monitor();
  const gpu = m.latest()!.devices[0]!;
  expect(gpu.memoryUsedBytes).toBe(4 * GiB);
  expect(gpu.processes!.map((p) => [p.pid, p.gpuInstanceId, p.computeInstanceId])).toEqual([
    [100, null, null],
    [200, 3, 1],
  ]);
  expect(gpu.mig!.instances![0]).toMatchObject({ index: 0, uuid: MIG, memoryUsedBytes: 3 * GiB, memoryFreeBytes: 17 * GiB });
  expect(gpu.mig!.instances![0]!.processes![0]!.smUtilizationRatio).toBeNull(); // none on MIG, as NVML
  // Each process once, with its MIG device.
  expect(attributedProcesses(gpu).map((a) => [a.process.pid, a.mig?.uuid ?? null])).toEqual([
    [200, MIG],
    [100, null],
  ]);
  m.setMigProcess(MIG.toLowerCase(), 201, GiB);
  m.removeMigProcess(MIG, 200);
  expect(m.migUsedBytes(MIG)).toBe(2 * GiB);
  expect(m.publish().devices[0]!.mig!.instances![0]!.processes!.map((p) => p.pid)).toEqual([201]);
});

it('shows an unreadable MIG list with its reason, MIG disabled with none, a lost GPU with no MIG reading', () => {
  const m = monitor();
  m.set(0, { mig: { instances: [], instancesError: { code: 'UNKNOWN', returnValue: 999 } } });
  expect(m.publish().devices[0]!.mig).toEqual({
    mode: { current: 'enabled', pending: 'enabled' },
    instances: null,
    missing: { instances: { code: 'UNKNOWN', returnValue: 999, function: 'nvmlDeviceGetMigDeviceHandleByIndex' } },
  });
  m.set(0, { mig: { mode: 'disabled', pendingMode: 'enabled', instances: [{ uuid: MIG, gpuInstanceId: 3, totalBytes: 20 * GiB }] } });
  expect(m.publish().devices[0]!.mig).toEqual({ mode: { current: 'disabled', pending: 'enabled' }, instances: [], missing: {} });
  m.set(0, { lost: true });
  const lost = m.publish().devices[0]!;
  expect(lost.mig).toBeNull();
  expect(lost.missing.mig).toMatchObject({ code: 'GPU_IS_LOST' });
});

it('refuses a MIG UUID that is not one, and names the MIG devices there are for an unknown one', () => {
  expect(() => new FakeMonitor([{ totalBytes: GiB, mig: { instances: [{ uuid: 'GPU-1', gpuInstanceId: 1, totalBytes: GiB }] } }])).toThrow(
    'fake MIG device uuid: expected "MIG-…", got "GPU-1"',
  );
  expect(() => monitor().setMigProcess('MIG-nope', 1, GiB)).toThrow(`no fake MIG device MIG-nope (the fake GPUs have ${MIG})`);
});

it('evaluates a watermark on a MIG device on that MIG device', () => {
  const m = monitor();
  const crossings: Array<{ valueBytes: number; above: boolean }> = [];
  m.on('watermark', (c: { valueBytes: number; above: boolean }) => crossings.push({ valueBytes: c.valueBytes, above: c.above }));
  m.watch({ device: 0, migUuid: MIG, thresholdBytes: 3.5 * GiB });
  expect(m.watermarkList()).toEqual([{ device: 0, thresholdBytes: 3.5 * GiB, pids: undefined, migUuid: MIG }]);
  m.publish(); // the board has 4 GiB, the MIG device 3
  expect(crossings).toEqual([]);
  m.setMigProcess(MIG, 200, 3 * GiB);
  m.publish();
  expect(crossings).toEqual([{ valueBytes: 4 * GiB, above: true }]);
});
