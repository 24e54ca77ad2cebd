// MIG series: each MIG device's memory and processes, labelled by its GPU and its own ids, and each GPU's
// MIG mode; read from the latest snapshot (the real addon on the mock), passing promtool.
import { execFileSync } from 'node:child_process';

import { Registry } from 'prom-client';
import { afterEach, expect, it } from 'vitest';

import { buildRegistry, ExporterState } from '../../src/metrics/gpu';
import * as nvml from '../../src/nvml';
import { FakeMonitor, type MockNvml, mockDevice } from '../../src/testing';
import { type Family, parseExposition, samples as allSamples } from '../cli/exposition';
import { promtoolPath } from '../cli/helpers';
import { GiB, useMock } from '../helpers';
import { MIG_A, MIG_B, migGpu } from '../native/mig-scenario';

const samples = (m: Map<string, Family>, name: string) => allSamples(m, name).map(({ labels, value }) => ({ labels, value }));

let mock: MockNvml | undefined;
afterEach(() => {
  mock?.cleanup();
  mock = undefined;
});

it('exports each MIG device under its GPU, apart from the board series', async () => {
  mock = useMock({ unprivileged: true, devices: [mockDevice(0), migGpu(1)] });
  const { snapshot, system } = nvml.readOnce();
  const state = new ExporterState({ latest: () => snapshot }, system, { processes: false, intervalMs: 1000 });
  state.observe(snapshot);
  const body = await buildRegistry(state, Registry.PROMETHEUS_CONTENT_TYPE).metrics();
  const m = parseExposition(body);
  const parent = migGpu(1).uuid!;
  const at = (mig: string, gi: string) => ({ gpu: '1', uuid: parent, mig_uuid: mig, gpu_instance: gi, compute_instance: '0' });
  expect(samples(m, 'vramguard_mig_memory_total_bytes')).toEqual([
    { labels: at(MIG_A, '1'), value: 40 * GiB },
    { labels: at(MIG_B, '2'), value: 20 * GiB },
  ]);
  expect(samples(m, 'vramguard_mig_memory_used_bytes')).toContainEqual({ labels: at(MIG_B, '2'), value: 7 * GiB });
  expect(samples(m, 'vramguard_mig_processes')).toEqual([
    { labels: at(MIG_A, '1'), value: 3 },
    { labels: at(MIG_B, '2'), value: 1 },
  ]);
  expect(samples(m, 'vramguard_gpu_mig_enabled')).toEqual([{ labels: { gpu: '1', uuid: parent, pending: 'enabled' }, value: 1 }]);
  // The unprivileged board: no memory series (absent, never 0), and NO_PERMISSION counted as a failure.
  expect(samples(m, 'vramguard_gpu_memory_used_bytes').map((s) => s.labels.gpu)).toEqual(['0']);
  expect(samples(m, 'vramguard_nvml_errors_total')).toContainEqual({ labels: { gpu: '1', field: 'memory_used_bytes', code: 'NO_PERMISSION' }, value: 1 });
  expect(execFileSync(promtoolPath(), ['check', 'metrics'], { input: body, encoding: 'utf8' })).toBe('');
});

it('labels a process in a MIG device with that MIG device, and a process on a whole GPU with mig_uuid=""', async () => {
  // Unprivileged: the MIG GPU's own process list is NO_PERMISSION; its MIG devices' lists are what show.
  mock = useMock({ unprivileged: true, devices: [mockDevice(0, 80, { processes: [{ pid: 3001, usedBytes: GiB }] }), migGpu(1)] });
  const { snapshot, system } = nvml.readOnce();
  const state = new ExporterState({ latest: () => snapshot }, system, { processes: true, intervalMs: 1000 });
  state.observe(snapshot);
  const body = await buildRegistry(state, Registry.PROMETHEUS_CONTENT_TYPE).metrics();
  const m = parseExposition(body);
  const parent = migGpu(1).uuid!;
  const series = samples(m, 'vramguard_process_memory_used_bytes').map(({ labels, value }) => [labels.gpu, labels.uuid, labels.mig_uuid, labels.pid, value]);
  expect(series).toEqual([
    ['0', mockDevice(0).uuid, '', '3001', GiB],
    ['1', parent, MIG_A, '4101', 3 * GiB],
    ['1', parent, MIG_A, '4102', 5 * GiB],
    ['1', parent, MIG_A, '4103', 1 * GiB],
    ['1', parent, MIG_B, '4201', 7 * GiB],
  ]);
  // No per-process utilization on MIG devices (NVML has none): absent, not zero.
  expect(samples(m, 'vramguard_process_sm_utilization_ratio').map((s) => s.labels.pid)).toEqual(['3001']);
  expect(execFileSync(promtoolPath(), ['check', 'metrics'], { input: body, encoding: 'utf8' })).toBe('');
});

it("a process keeps its mig_uuid through a pass whose MIG device list cannot be read (the GPU's list still shows it)", async () => {
  const migUuid = 'MIG-12345678-0000-4000-8000-000000000001';
  const monitor = new FakeMonitor([{ totalBytes: 80 * GiB, mig: { instances: [{ uuid: migUuid, gpuInstanceId: 3, totalBytes: 20 * GiB, processes: { 4242: 2 * GiB } }] } }]);
  const state = new ExporterState(monitor, null, { processes: true, intervalMs: 1000 });
  const registry = buildRegistry(state, Registry.PROMETHEUS_CONTENT_TYPE);
  const scrape = async () => {
    state.observe(monitor.latest()!);
    return samples(parseExposition(await registry.metrics()), 'vramguard_process_memory_used_bytes').map((s) => [s.labels.mig_uuid, s.labels.pid]);
  };
  expect(await scrape()).toEqual([[migUuid, '4242']]);
  monitor.set(0, { mig: { instances: [{ uuid: migUuid, gpuInstanceId: 3, totalBytes: 20 * GiB, processes: { 4242: 2 * GiB } }], instancesError: { code: 'UNKNOWN', returnValue: 999 } } });
  monitor.publish();
  expect(monitor.latest()!.devices[0]!.mig!.instances).toBeNull();
  expect(await scrape()).toEqual([[migUuid, '4242']]);
});
