// A guard on a MIG device (device: 'MIG-…'): quotas are of that MIG device's memory, its processes are
// what counts, and pressure there (not on the board) evicts. The parent is read unprivileged, so the
// board's memory and processes are NO_PERMISSION: only the MIG device's own readings can work.
import { afterEach, expect, it } from 'vitest';

import { UnknownMigDeviceError } from '../../src/errors';
import { type EvictEvent, VramGuard } from '../../src/guard';
import { Sampler } from '../../src/sampler';
import { MockControl, type MockNvml } from '../../src/testing';
import { GiB, useMock } from '../helpers';
import { MIG_A, MIG_B, migGpu } from '../native/mig-scenario';

let mock: MockNvml | undefined;
afterEach(() => {
  mock?.cleanup();
  mock = undefined;
});

async function waitUntil(predicate: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 10));
  }
}

it('quotas, usage and eviction follow the MIG device, not the board', async () => {
  mock = useMock({ unprivileged: true, devices: [migGpu(0)] });
  const control = new MockControl(mock.controlPath);
  // Our own pid holds the sessions' bytes in MIG device A (gi 1 / ci 0); B's 7 GiB process is not ours.
  let held = 0;
  const hold = (bytes: number) => {
    held += bytes;
    control.setProcess(0, { pid: process.pid, usedBytes: held, gpuInstanceId: 1, computeInstanceId: 0 });
  };
  const guard = new VramGuard({ device: MIG_A, scope: { pids: [process.pid] }, quota: { soft: '25%', hard: '30%' }, hysteresis: '1GiB', interval: '20ms', idleTtl: null });
  const evictions: EvictEvent[] = [];
  guard.on('evict', (e) => evictions.push(e));
  try {
    await waitUntil(() => guard.health().state === 'ready');
    // Percentages of the MIG device's 40 GiB, not of the board's 80 GiB.
    expect(guard.status().quota).toMatchObject({ softBytes: 10 * GiB, hardBytes: 12 * GiB });
    expect(guard.status().device).toMatchObject({ index: 0, uuid: MIG_A, lost: false });
    const load = async (id: string, gib: number) => {
      const reservation = await guard.admit(gib * GiB, { id });
      hold(gib * GiB);
      return reservation.commit({ dispose: () => hold(-gib * GiB) });
    };
    await load('a', 4);
    await load('b', 4);
    await waitUntil(() => guard.status().usage.scopeBytes === 8 * GiB);
    expect(guard.status().usage).toMatchObject({ source: 'nvml', deviceTotalBytes: 40 * GiB });
    expect(guard.status().scope.inForce).not.toBe('ledger');
    // 3 GiB more: 11 GiB in the MIG device crosses its soft limit (10): the least recently used goes.
    await load('c', 3);
    await waitUntil(() => evictions.length > 0);
    expect(evictions.map((e) => [e.id, e.reason])).toEqual([['a', 'pressure']]);
    await waitUntil(() => guard.status().usage.scopeBytes === 7 * GiB);
  } finally {
    await guard.close();
  }
});

it('a MIG- UUID no GPU has is a typed error naming it and the MIG devices there are', () => {
  mock = useMock({ devices: [migGpu(0)] });
  const bad = 'MIG-00000000-dead-beef-0000-000000000000';
  let error: unknown;
  try {
    new VramGuard({ device: bad, quota: { hard: '10GiB' } });
  } catch (e) {
    error = e;
  }
  expect(error).toBeInstanceOf(UnknownMigDeviceError);
  expect(error).toMatchObject({ code: 'UNKNOWN_MIG_DEVICE', uuid: bad, option: 'device' });
  expect((error as Error).message).toBe(`device: no MIG device ${bad} (this machine has ${MIG_A} on GPU 0; ${MIG_B} on GPU 0)`);
});

it('given a monitor that samples the whole board, the guard still sees only its MIG device', async () => {
  mock = useMock({ devices: [migGpu(0)] });
  const sampler = new Sampler({ interval: '20ms' }).start();
  await sampler.next(); // a UUID is looked up in the monitor's latest sample
  const guard = new VramGuard({ device: MIG_B, monitor: sampler, scope: 'device', quota: { hard: '50%' }, interval: '20ms', idleTtl: null });
  try {
    await waitUntil(() => guard.health().state === 'ready');
    expect(guard.status().quota.hardBytes).toBe(10 * GiB); // half of the MIG device's 20 GiB
    expect(guard.status().device.uuid).toBe(MIG_B);
    expect(guard.status().usage).toMatchObject({ deviceUsedBytes: 7 * GiB, deviceTotalBytes: 20 * GiB, deviceFreeBytes: 13 * GiB });
    // The board itself stays as it is for everyone else reading the sampler.
    expect(sampler.latest()!.devices[0]!.memoryTotalBytes).toBe(80 * GiB);
    // 4 GiB does not fit under the MIG device's hard limit (10 - 7 = 3): a typed refusal with its figures.
    const refusal = await guard.admit(4 * GiB, { id: 'big' }).then(
      () => null,
      (error: unknown) => error as { name: string; hardBytes: number; deviceFreeBytes: number | null },
    );
    expect(refusal).toMatchObject({ name: 'VramQuotaError', hardBytes: 10 * GiB });
    // The MIG device's free bytes (13 GiB, less the guard's padding), not the board's (over 60 GiB).
    expect(refusal!.deviceFreeBytes).toBeGreaterThan(12 * GiB);
    expect(refusal!.deviceFreeBytes).toBeLessThanOrEqual(13 * GiB);
  } finally {
    await guard.close();
    sampler.close();
  }
});
