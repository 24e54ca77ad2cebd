// `vramguard info`: versions, the library's entry points, each device and what it supports.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';

import { MIG_A, MIG_B, migGpu } from '../native/mig-scenario';
import { CliProcess, GiB, mockDevice, root, runCli, ScenarioDir, twoGpus } from './helpers';

// Each test starts real CLI processes and waits for conditions (never fixed sleeps): generous limits for
// a loaded two-core machine.
vi.setConfig({ testTimeout: 300_000, hookTimeout: 120_000 });

let dir: ScenarioDir;
beforeAll(() => {
  dir = new ScenarioDir();
});
afterAll(() => dir.cleanup());

interface InfoJson {
  library_path: string;
  is_mock: boolean;
  driver_version: string;
  nvml_version: string;
  cuda_driver_version: string;
  device_count: number;
  capabilities: Record<string, boolean>;
  symbols: Record<string, boolean>;
  devices: Array<{
    gpu: number;
    uuid: string;
    name: string;
    pci_bus_id: string;
    pci_device_id: string;
    pci_vendor_id: string;
    lost: boolean;
    memory_total_bytes: number;
    memory_used_bytes: number;
    memory_reserved_bytes: number | null;
    memory_info_version: number;
    process_record_layout: string;
    process_count: number;
    readings: Record<string, { supported: boolean; reason: { code: string; function: string } | null }>;
  }>;
}

it('--json: versions, capabilities and every device', async () => {
  const scenario = dir.write(
    'info.json',
    twoGpus({ driverVersion: '555.42.02', nvmlVersion: '12.555.42.02', cudaDriverVersion: 12050 }),
  );
  const r = await runCli(['info', '--mock', scenario, '--json']);
  expect(r.code).toBe(0);
  expect(r.stderr).toBe('');
  const info = JSON.parse(r.stdout) as InfoJson;
  expect(info).toMatchObject({
    is_mock: true,
    driver_version: '555.42.02',
    nvml_version: '12.555.42.02',
    cuda_driver_version: '12.5',
    device_count: 2,
  });
  expect(info.library_path).toMatch(/libnvidia-ml\.so\.1$/);
  expect(info.capabilities).toMatchObject({ memory_info_v2: true, process_list_v3: true, process_utilization: true });
  expect(info.symbols.nvmlDeviceGetMemoryInfo_v2).toBe(true);
  expect(info.devices).toHaveLength(2);
  const d0 = info.devices[0]!;
  expect(d0).toMatchObject({
    gpu: 0,
    name: 'NVIDIA H100 80GB HBM3',
    uuid: mockDevice(0).uuid,
    pci_bus_id: mockDevice(0).pciBusId,
    pci_device_id: '0x2330',
    pci_vendor_id: '0x10de',
    lost: false,
    memory_total_bytes: 80 * GiB,
    memory_used_bytes: 6 * GiB,
    memory_reserved_bytes: 512 * 2 ** 20,
    memory_info_version: 2,
    process_record_layout: 'detail-list-v1',
    process_count: 2,
  });
  for (const reading of ['memory', 'utilization', 'temperature', 'power_usage', 'power_limit', 'clocks', 'processes']) {
    expect(d0.readings[reading]).toEqual({ supported: true, reason: null });
  }
});

it('reports what a device does not support, and an old driver', async () => {
  const scenario = dir.write(
    'old.json',
    {
      era: '470',
      devices: [mockDevice(0, 16, { name: 'Tesla T4', power: null, clocks: null })],
    },
  );
  const json = JSON.parse((await runCli(['info', '--mock', scenario, '--json'])).stdout) as InfoJson;
  const d = json.devices[0]!;
  expect(json.driver_version).toBe('470.256.02');
  expect(d.memory_info_version).toBe(1);
  expect(d.memory_reserved_bytes).toBeNull();
  expect(d.readings.memory_reserved).toMatchObject({ supported: false, reason: { code: 'FUNCTION_NOT_FOUND', function: 'nvmlDeviceGetMemoryInfo_v2' } });
  expect(d.readings.power_usage).toMatchObject({ supported: false, reason: { code: 'NOT_SUPPORTED', function: 'nvmlDeviceGetPowerUsage' } });
  expect(d.readings.clocks).toMatchObject({ supported: false, reason: { code: 'NOT_SUPPORTED' } });
  expect(d.readings.memory).toEqual({ supported: true, reason: null });

  const text = await runCli(['info', '--mock', scenario]);
  expect(text.code).toBe(0);
  expect(text.stdout).toMatch(/^GPU 0 {2}Tesla T4$/m);
  expect(text.stdout).toMatch(/memory info v1/);
  expect(text.stdout).toMatch(/unsupported +memory_reserved \(FUNCTION_NOT_FOUND\), power_usage \(NOT_SUPPORTED\), power_limit \(NOT_SUPPORTED\), clocks \(NOT_SUPPORTED\)/);
});

it('text: the versions, then a block per device', async () => {
  const scenario = dir.write('text.json', twoGpus());
  const r = await runCli(['info', '--mock', scenario]);
  expect(r.code).toBe(0);
  expect(r.stdout).toMatch(/^ {2}driver +550\.54\.15$/m);
  expect(r.stdout).toMatch(/^ {2}NVML +12\.550\.54\.15$/m);
  expect(r.stdout).toMatch(/^ {2}CUDA driver +12\.4$/m);
  expect(r.stdout).toMatch(/^ {2}GPUs +2$/m);
  expect(r.stdout).toMatch(/^ {2}library .*libnvidia-ml\.so\.1 \(vramguard mock\)$/m);
  expect(r.stdout).toMatch(/^GPU 0 {2}NVIDIA H100 80GB HBM3$/m);
  expect(r.stdout).toMatch(/^GPU 1 {2}NVIDIA H100 80GB HBM3$/m);
  expect(r.stdout).toContain(`uuid          ${mockDevice(1).uuid}`);
  expect(r.stdout).toMatch(/pci +00000000:18:00\.0 {2}\(device 0x2330, vendor 0x10de\)/);
  expect(r.stdout).toMatch(/memory +80\.0 GiB total, 6\.0 GiB used, 512\.0 MiB reserved/);
});

it('--device picks devices by index, UUID or PCI bus id, in the order given', async () => {
  const scenario = dir.write('pick.json', twoGpus());
  const json = async (...device: string[]) =>
    (JSON.parse((await runCli(['info', '--mock', scenario, '--json', ...device.flatMap((d) => ['--device', d])])).stdout) as InfoJson).devices.map(
      (d) => d.gpu,
    );
  expect(await json('1')).toEqual([1]);
  expect(await json(mockDevice(1).uuid!)).toEqual([1]);
  expect(await json('0000:28:00.0')).toEqual([1]); // domain shortened, as lspci writes it
  expect(await json('1,0')).toEqual([1, 0]);
  expect(await json('1', mockDevice(0).uuid!.toLowerCase())).toEqual([1, 0]);
});

it('a GPU lost since start-up: reported, not fatal', async () => {
  const scenario = dir.write('lost.json', twoGpus({ devices: [mockDevice(0), mockDevice(1, 80, { lost: true })] }));
  const r = await runCli(['info', '--mock', scenario, '--json']);
  expect(r.code).toBe(0);
  const devices = (JSON.parse(r.stdout) as InfoJson).devices;
  expect(devices[0]!.lost).toBe(false);
  expect(devices[1]).toMatchObject({ gpu: 1, lost: true, memory_total_bytes: null });
  const text = await runCli(['info', '--mock', scenario]);
  expect(text.stdout).toMatch(/^GPU 1 .*LOST \(GPU_IS_LOST\)$/m);
});

describe('the example scenarios shipped in examples/scenarios/', () => {
  const examples = join(root, 'examples', 'scenarios');
  const expected: Record<string, { gpus: number; name: string }> = {
    'h100-8gpu-inference.json': { gpus: 8, name: 'NVIDIA H100 80GB HBM3' },
    'consumer-rtx4090.json': { gpus: 1, name: 'NVIDIA GeForce RTX 4090' },
    'gpu-lost.json': { gpus: 2, name: 'NVIDIA A100-SXM4-40GB' },
    'legacy-driver-470-t4.json': { gpus: 1, name: 'Tesla T4' },
    'a100-mig.json': { gpus: 1, name: 'NVIDIA A100-SXM4-80GB' },
  };

  it('are all there, and load', async () => {
    expect(readdirSync(examples).filter((f) => f.endsWith('.json')).sort()).toEqual(Object.keys(expected).sort());
    for (const [file, { gpus, name }] of Object.entries(expected)) {
      const r = await runCli(['info', '--mock', join(examples, file), '--json']);
      expect(r.code, `${file}: ${r.stderr}`).toBe(0);
      const info = JSON.parse(r.stdout) as InfoJson;
      expect(info.devices).toHaveLength(gpus);
      expect(info.devices[0]!.name).toBe(name);
    }
  });

  it('a100-mig.json: three MIG devices, their processes, an unprivileged reader', async () => {
    const info = JSON.parse((await runCli(['info', '--mock', join(examples, 'a100-mig.json'), '--json'])).stdout) as InfoJson & {
      devices: Array<{ mig: { instances: Array<{ gpu_instance_id: number; process_count: number }> } }>;
    };
    expect(info.devices[0]!.readings.memory).toMatchObject({ supported: false, reason: { code: 'NO_PERMISSION' } });
    expect(info.devices[0]!.mig.instances.map((i) => [i.gpu_instance_id, i.process_count])).toEqual([
      [1, 1],
      [5, 2],
      [6, 0],
    ]);
  });

  it('the 8-GPU server runs several inference processes', async () => {
    const info = JSON.parse((await runCli(['info', '--mock', join(examples, 'h100-8gpu-inference.json'), '--json'])).stdout) as InfoJson;
    expect(info.devices.map((d) => d.process_count)).toEqual([1, 1, 1, 1, 2, 3, 1, 0]);
  });

  it('gpu-lost.json loses GPU 1 mid-run', async () => {
    // A copy, so that no control file is looked for beside the shipped one.
    const copy = dir.write('gpu-lost.json', readFileSync(join(examples, 'gpu-lost.json'), 'utf8'));
    const cli = new CliProcess(['sample', '--mock', copy, '--interval', '200ms', '--fields', 'sequence,gpu,lost,lost_reason']);
    try {
      const rows = () => cli.stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l) as { sequence: number; gpu: number; lost: boolean; lost_reason: string | null });
      await cli.until(() => rows().some((r) => r.gpu === 1 && r.lost), 'GPU 1 lost (the scenario loses it at 5 s)');
      expect(rows()[1]).toMatchObject({ gpu: 1, lost: false });
      expect(rows().find((r) => r.lost)).toMatchObject({ gpu: 1, lost_reason: 'GPU_IS_LOST' });
      expect(rows().filter((r) => r.gpu === 0).every((r) => !r.lost)).toBe(true);
      expect(await cli.stop()).toEqual({ code: 0, signal: null });
    } finally {
      cli.kill();
    }
  });
});

it('MIG: the MIG devices under their GPU (JSON and text); the unprivileged parent says NO_PERMISSION; --device takes a MIG- UUID', async () => {
  const scenario = dir.write('mig.json', { unprivileged: true, devices: [mockDevice(0, 80), migGpu(1)] });
  const json = JSON.parse((await runCli(['info', '--mock', scenario, '--json'])).stdout) as InfoJson & {
    devices: Array<{ mig: { mode: string; pending_mode: string; instances: Array<Record<string, unknown>> | null } | null }>;
  };
  const [plain, gpu] = json.devices;
  expect(plain!.mig).toBeNull();
  expect(plain!.readings.mig).toMatchObject({ supported: false, reason: { code: 'NOT_SUPPORTED', function: 'nvmlDeviceGetMigMode' } });
  expect(gpu!.readings.memory).toMatchObject({ supported: false, reason: { code: 'NO_PERMISSION' } });
  expect(gpu!.readings.processes).toMatchObject({ supported: false, reason: { code: 'NO_PERMISSION' } });
  expect(gpu!.mig).toMatchObject({ mode: 'enabled', pending_mode: 'enabled' });
  expect(gpu!.mig!.instances).toEqual([
    expect.objectContaining({ mig_index: 0, uuid: MIG_A, gpu_instance_id: 1, compute_instance_id: 0, memory_total_bytes: 40 * GiB, process_count: 3 }),
    expect.objectContaining({ mig_index: 2, uuid: MIG_B, gpu_instance_id: 2, memory_total_bytes: 20 * GiB, memory_used_bytes: 7 * GiB, process_count: 1 }),
  ]);

  const text = await runCli(['info', '--mock', scenario, '--device', MIG_B]);
  expect(text.code).toBe(0);
  expect(text.stdout).not.toMatch(/^GPU 0/m); // the MIG device's GPU only
  expect(text.stdout).toMatch(/^ {2}memory {8}unknown \(NO_PERMISSION\)$/m);
  expect(text.stdout).toMatch(/^ {2}MIG {11}enabled, 2 MIG devices$/m);
  expect(text.stdout).toContain(`  MIG 2         ${MIG_B}  (GPU instance 2, compute instance 0)\n    memory      20.0 GiB total, 7.0 GiB used, 0 B reserved, 13.0 GiB free  (memory info v2)\n    processes   1\n`);

  const unknown = await runCli(['info', '--mock', scenario, '--device', 'MIG-nope']);
  expect(unknown.code).not.toBe(0);
  expect(unknown.stderr).toContain(`no MIG device MIG-nope (this machine has ${MIG_A} on GPU 1; ${MIG_B} on GPU 1)`);
});
