// What real drivers do that the reader must cope with: junk utilization samples, answers covering only
// some processes, a CUDA _v2 query without libcuda, a GPU lost before it was ever read, and a
// version string the exported symbols contradict.
import { afterEach, expect, it } from 'vitest';

import { buildRegistry, ExporterState } from '../../src/metrics/gpu';
import * as nvml from '../../src/nvml';
import { Sampler } from '../../src/sampler';
import { mockDevice, type MockNvml, type MockScenario } from '../../src/testing';
import type { Snapshot } from '../../src/types';
import { GiB, useMock, NOT_MIG_CAPABLE } from '../helpers';

let mock: MockNvml | undefined;
afterEach(() => mock?.cleanup());

async function passes(scenario: MockScenario, until: (s: Snapshot, all: Snapshot[]) => boolean): Promise<Snapshot[]> {
  mock = useMock(scenario);
  const sampler = new Sampler({ interval: '10ms' }).start();
  const all: Snapshot[] = [];
  try {
    for (;;) {
      const s = await sampler.next();
      all.push(s);
      if (until(s, all)) return all;
    }
  } finally {
    sampler.close();
  }
}

const busy = (period: number, junk = false): MockScenario => ({
  processUtilizationPeriodMs: period,
  devices: [
    mockDevice(0, 80, {
      processUtilizationJunk: junk,
      processes: [
        { pid: 101, usedBytes: 1 * GiB, smUtilPercent: 60, memUtilPercent: 20 },
        { pid: 202, usedBytes: 2 * GiB, smUtilPercent: 30, memUtilPercent: 10 },
      ],
    }),
  ],
});

it('refuses junk samples (pid 0, SM above 100%, foreign pids, future timestamps) and keeps reading', async () => {
  // A future timestamp taken as lastSeen would make every later answer NOT_FOUND: 0% for good.
  const all = await passes(busy(20, true), (s, seen) => seen.filter((x) => x.devices[0]!.processUtilizationFresh).length >= 5);
  const fresh = all.filter((s) => s.devices[0]!.processUtilizationFresh);
  const last = fresh.at(-1)!.devices[0]!;
  expect(last.utilizationSamplesRejected).toBeGreaterThanOrEqual(3);
  expect(last.utilizationSamplesRejectedTotal).toBeGreaterThanOrEqual(3 * fresh.length);
  expect(last.processes!.map((p) => [p.pid, p.smUtilizationRatio, p.memoryUtilizationRatio])).toEqual([
    [101, 0.6, 0.2],
    [202, 0.3, 0.1],
  ]);
  for (const s of all) for (const p of s.devices[0]!.processes!) expect(p.smUtilizationRatio!).toBeLessThanOrEqual(1);

  const state = new ExporterState({ latest: () => all.at(-1)! }, null, { processes: false, intervalMs: 10 });
  const text = await buildRegistry(state, 'text/plain; version=0.0.4; charset=utf-8').metrics();
  const rejected = /^vramguard_gpu_process_utilization_samples_rejected_total\{gpu="0"\} (\d+)$/m.exec(text);
  expect(Number(rejected?.[1])).toBe(all.at(-1)!.devices[0]!.utilizationSamplesRejectedTotal);
});

it('an answer covering only some processes does not zero the others before the hold time', async () => {
  // Each process is sampled at its own phase: many answers carry one pid only.
  const all = await passes(busy(100), (_s, seen) => seen.length >= 40);
  const after = all.slice(all.findIndex((s) => s.devices[0]!.processes!.every((p) => (p.smUtilizationRatio ?? 0) > 0)));
  expect(after.length).toBeGreaterThan(20);
  for (const s of after) {
    expect(s.devices[0]!.processes!.map((p) => p.smUtilizationRatio)).toEqual([0.6, 0.3]);
    expect(s.devices[0]!.utilizationSamplesRejected).toBe(0);
  }
});

it('falls back to the v1 CUDA version call when _v2 finds no libcuda', () => {
  mock = useMock({ libcudaPresent: false, devices: [mockDevice(0)] });
  const { system } = nvml.readOnce();
  expect(system.cudaDriverVersion).toBe('13.0');
  expect(system.missing).toEqual({});
});

it('a GPU lost before its identity was read reports its identity as lost, with the call that found it', () => {
  mock = useMock({ devices: [mockDevice(0), { ...mockDevice(1), lost: true, handleLost: true }] });
  const d1 = nvml.readOnce().snapshot.devices[1]!;
  expect(d1.lost).toBe(true);
  expect(d1.lostReason).toMatchObject({ code: 'GPU_IS_LOST', function: 'nvmlDeviceGetHandleByIndex_v2' });
  for (const field of ['uuid', 'name', 'pciBusId', 'pciDeviceId']) {
    expect(d1.missing[field], field).toMatchObject({ code: 'GPU_IS_LOST', function: 'nvmlDeviceGetHandleByIndex_v2' });
  }
});

it('says what decided the _v3 record size: symbols overrule a version string they contradict', () => {
  mock = useMock({ driverVersion: '535.54.03', devices: [mockDevice(0)] });
  const { system } = nvml.readOnce();
  expect(system.v3ProcessRecordBytes).toBe(24);
  expect(system.v3ProcessRecordEvidence).toBe('exported symbols (not the 535.43-535.86 set), overruling driver version 535.54.03');
});

it('a MIG-enabled parent read without privileges says NO_PERMISSION, not zero', () => {
  mock = useMock({ unprivileged: true, devices: [mockDevice(0), mockDevice(1, 80, { migMode: true })] });
  const [plain, parent] = nvml.readOnce().snapshot.devices;
  expect(plain!.missing).toEqual(NOT_MIG_CAPABLE);
  expect(parent!.memoryUsedBytes).toBeNull();
  expect(parent!.missing.memoryUsedBytes).toMatchObject({ code: 'NO_PERMISSION' });
  expect(parent!.processes).toBeNull();
  expect(parent!.missing.processes).toMatchObject({ code: 'NO_PERMISSION', function: 'nvmlDeviceGetRunningProcessDetailList' });
  expect(parent!.lost).toBe(false);
});
