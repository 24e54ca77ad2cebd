// MIG series: each MIG device's memory and processes, labelled by its GPU and its own ids, and each GPU's
// MIG mode; read from the latest snapshot (the real addon on the mock), passing promtool.
import { execFileSync } from 'node:child_process';

import { Registry } from 'prom-client';
import { afterEach, expect, it } from 'vitest';

import { buildRegistry, ExporterState } from '../../src/metrics/gpu';
import * as nvml from '../../src/nvml';
import { type MockNvml, mockDevice } from '../../src/testing';
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
