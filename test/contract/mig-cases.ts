// The MIG cases of the monitor contract (watermarks.ts runs them for FakeMonitor and for the real Sampler
// on the mock NVML): GPU 1 is in MIG mode with two MIG devices; watermarks and a guard that target a MIG
// device see that MIG device's memory and processes, not the board's.
import { expect, it } from 'vitest';

import { type EvictEvent, VramGuard } from '../../src/guard';
import type { GuardMonitor } from '../../src/guard/types';
import type { FakeDeviceState, MockDevice } from '../../src/testing';
import { mockDevice } from '../../src/testing';
import type { Snapshot } from '../../src/types';

const GiB = 2 ** 30;
export const MIG_GPU = 1;
export const MIG_A = 'MIG-aaaaaaaa-0000-4000-8000-00000000000a';
export const MIG_B = 'MIG-bbbbbbbb-0000-4000-8000-00000000000b';
/** Someone else's process in MIG device B. */
export const OTHER = 4201;

/** The MIG GPU as FakeMonitor state: 80 GiB; A (gi 1) 40 GiB, B (gi 2) 20 GiB with OTHER's 7 GiB. */
export function fakeMigGpu(): FakeDeviceState {
  return {
    totalBytes: 80 * GiB,
    mig: {
      instances: [
        { uuid: MIG_A, gpuInstanceId: 1, totalBytes: 40 * GiB },
        { uuid: MIG_B, gpuInstanceId: 2, totalBytes: 20 * GiB, processes: { [OTHER]: 7 * GiB } },
      ],
    },
  };
}

/** The same GPU as a mock NVML scenario device. */
export function mockMigGpu(): MockDevice {
  return mockDevice(MIG_GPU, 80, {
    memory: { total: 80 * GiB, reserved: 0, otherUsed: 0 },
    migMode: true,
    migInstances: [
      { uuid: MIG_A, gpuInstanceId: 1, computeInstanceId: 0, memory: { total: 40 * GiB, reserved: 0, otherUsed: 0 } },
      { uuid: MIG_B, gpuInstanceId: 2, computeInstanceId: 0, memory: { total: 20 * GiB, reserved: 0, otherUsed: 0 } },
    ],
    processes: [{ pid: OTHER, usedBytes: 7 * GiB, gpuInstanceId: 2, computeInstanceId: 0 }],
  });
}

export interface MigDriver {
  monitor: GuardMonitor & { latest(): Snapshot | null };
  watch(spec: { device: number; thresholdBytes: number; pids?: number[]; migUuid?: string }): { id: number; remove(): void };
  /** Sets a process's bytes in MIG device A (gi 1 / ci 0) of GPU 1. */
  setMigProcess(pid: number, bytes: number): void;
  settle(): Promise<void>;
}

export interface Crossing {
  id: number;
  above: boolean;
  valueBytes: number;
  thresholdBytes: number;
}

/** Settles until `predicate` holds (a condition, never a duration; the deadline only ends a failing test). */
async function settleUntil(driver: MigDriver, predicate: () => boolean): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error('condition not met');
    await driver.settle();
  }
}

/** The cases; `current` gives the driver of the running test (set up with our pids A and B in MIG device A). */
export function migCases(current: () => { driver: MigDriver; crossings: Crossing[] }, pids: { A: number; B: number }): void {
  const { A, B } = pids;

  it('MIG: samples carry the MIG devices with their memory and processes', async () => {
    const { driver } = current();
    const gpu = driver.monitor.latest()!.devices[MIG_GPU]!;
    expect(gpu.mig?.mode).toEqual({ current: 'enabled', pending: 'enabled' });
    const instances = gpu.mig!.instances!;
    expect(instances.map((i) => [i.uuid, i.gpuInstanceId, i.computeInstanceId, i.memoryTotalBytes, i.memoryUsedBytes])).toEqual([
      [MIG_A, 1, 0, 40 * GiB, 3 * GiB],
      [MIG_B, 2, 0, 20 * GiB, 7 * GiB],
    ]);
    expect(instances[0]!.processes!.map((p) => [p.pid, p.usedBytes, p.gpuInstanceId, p.computeInstanceId])).toEqual([
      [A, 2 * GiB, 1, 0],
      [B, 1 * GiB, 1, 0],
    ]);
    expect(instances[1]!.processes!.map((p) => p.pid)).toEqual([OTHER]);
  });

  it('MIG: a watermark on a MIG device sums that MIG device, not the board', async () => {
    const { driver, crossings } = current();
    // The board holds 10 GiB (3 in A, 7 in B): above 4 GiB; MIG device A (3 GiB) is not.
    const device = driver.watch({ device: MIG_GPU, migUuid: MIG_A, thresholdBytes: 4 * GiB });
    const ours = driver.watch({ device: MIG_GPU, migUuid: MIG_A, thresholdBytes: 1.5 * GiB, pids: [A] });
    const elsewhere = driver.watch({ device: MIG_GPU, migUuid: MIG_B, thresholdBytes: GiB, pids: [A] });
    await driver.settle();
    expect(crossings).toEqual([{ id: ours.id, above: true, valueBytes: 2 * GiB, thresholdBytes: 1.5 * GiB }]);
    driver.setMigProcess(A, 4 * GiB); // A: 5 GiB
    await settleUntil(driver, () => crossings.length >= 2);
    expect(crossings.slice(1)).toEqual([{ id: device.id, above: true, valueBytes: 5 * GiB, thresholdBytes: 4 * GiB }]);
    expect(crossings.some((c) => c.id === elsewhere.id)).toBe(false);
  });

  it('MIG: a guard on a MIG device takes its quota, usage and pressure from that MIG device', async () => {
    const { driver } = current();
    const guard = new VramGuard({
      device: MIG_A,
      monitor: driver.monitor,
      scope: { pids: [A, B] },
      quota: { soft: '25%', hard: '50%' },
      hysteresis: '1GiB',
      interval: '20ms',
      idleTtl: null,
    });
    const evictions: EvictEvent[] = [];
    guard.on('evict', (e) => evictions.push(e));
    try {
      await settleUntil(driver, () => guard.health().state === 'ready' && guard.status().usage.scopeBytes === 3 * GiB);
      // Percentages of MIG device A's 40 GiB, not the board's 80.
      expect(guard.status().quota).toMatchObject({ softBytes: 10 * GiB, hardBytes: 20 * GiB });
      expect(guard.status().device).toMatchObject({ index: MIG_GPU, uuid: MIG_A });
      expect(guard.status().usage).toMatchObject({ deviceTotalBytes: 40 * GiB, deviceUsedBytes: 3 * GiB });
      // 18 GiB more would pass the hard limit (3 + 18 > 20): a typed refusal with the figures.
      const refusal = await guard.admit(18 * GiB, { id: 'big' }).then(
        () => null,
        (error: unknown) => error as { name: string; hardBytes: number },
      );
      expect(refusal).toMatchObject({ name: 'VramQuotaError', hardBytes: 20 * GiB });
      // A session held by A grows MIG device A past its soft limit: the guard evicts it.
      guard.sessions.register('model', { bytes: 9 * GiB, dispose: () => driver.setMigProcess(A, 2 * GiB) });
      driver.setMigProcess(A, 11 * GiB); // A: 12 GiB > 10
      await settleUntil(driver, () => evictions.length > 0 && guard.status().usage.scopeBytes === 3 * GiB);
      expect(evictions.map((e) => [e.id, e.reason])).toEqual([['model', 'pressure']]);
    } finally {
      await guard.close();
    }
  });
}
