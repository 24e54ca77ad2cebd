// `vramguard info`: driver, NVML and CUDA versions, the library's entry points, and each device:
// identity, memory, and which readings it supports, from one synchronous NVML pass.
import type { NvmlReason } from '../errors';
import * as nvml from '../nvml';
import type { DeviceSample, MigInstanceSample, MigSample } from '../types';
import { formatBytes } from '../units';
import { type CommonOptions, EXIT_OK, openNvml, snakeCase } from './common';
import { MockWarnings } from './mock-warnings';

export interface InfoOptions extends CommonOptions {
  json: boolean;
}

/** The readings `info` reports as supported or not, per device, with the snapshot fields behind each. */
const READINGS: ReadonlyArray<{ name: string; fields: Array<keyof DeviceSample | 'processUtilization'> }> = [
  { name: 'memory', fields: ['memoryTotalBytes', 'memoryUsedBytes', 'memoryFreeBytes'] },
  { name: 'memory_reserved', fields: ['memoryReservedBytes'] },
  { name: 'utilization', fields: ['gpuUtilizationRatio', 'memoryUtilizationRatio'] },
  { name: 'temperature', fields: ['temperatureCelsius'] },
  { name: 'power_usage', fields: ['powerUsageWatts'] },
  { name: 'power_limit', fields: ['powerLimitWatts'] },
  { name: 'clocks', fields: ['smClockHertz', 'memoryClockHertz'] },
  { name: 'processes', fields: ['processes'] },
  { name: 'process_utilization', fields: ['processUtilization'] },
  { name: 'mig', fields: ['mig'] },
];

interface ReadingStatus {
  supported: boolean;
  /** Why not: NVML's code and function. */
  reason: { code: string; return_value: number; function: string } | null;
}

function reasonJson(reason: NvmlReason | undefined): ReadingStatus['reason'] {
  return reason ? { code: reason.code, return_value: reason.returnValue, function: reason.function } : null;
}

/** A MIG-enabled GPU's MIG devices as `--json` lists them (null where the GPU cannot do MIG: see readings.mig). */
function migDocument(mig: MigSample | null): Record<string, unknown> | null {
  if (mig === null) return null;
  return {
    mode: mig.mode.current,
    pending_mode: mig.mode.pending,
    instances:
      mig.instances?.map((i) => ({
        mig_index: i.index,
        uuid: i.uuid,
        gpu_instance_id: i.gpuInstanceId,
        compute_instance_id: i.computeInstanceId,
        memory_total_bytes: i.memoryTotalBytes,
        memory_used_bytes: i.memoryUsedBytes,
        memory_free_bytes: i.memoryFreeBytes,
        memory_reserved_bytes: i.memoryReservedBytes,
        memory_info_version: i.memoryInfoVersion,
        process_count: i.processes?.length ?? null,
        processes_reason: reasonJson(i.missing.processes),
      })) ?? null,
    instances_reason: reasonJson(mig.missing.instances),
  };
}

function memoryText(d: Pick<DeviceSample, 'memoryTotalBytes' | 'memoryUsedBytes' | 'memoryReservedBytes' | 'memoryFreeBytes' | 'memoryInfoVersion'>): string {
  if (d.memoryTotalBytes === null) return 'unknown';
  const parts = [`${formatBytes(d.memoryTotalBytes)} total`];
  if (d.memoryUsedBytes !== null) parts.push(`${formatBytes(d.memoryUsedBytes)} used`);
  if (d.memoryReservedBytes !== null) parts.push(`${formatBytes(d.memoryReservedBytes)} reserved`);
  if (d.memoryFreeBytes !== null) parts.push(`${formatBytes(d.memoryFreeBytes)} free`);
  return `${parts.join(', ')}  (memory info v${d.memoryInfoVersion ?? '?'})`;
}

/** The MIG rows under their GPU: the mode, then each MIG device with its memory and processes. */
function migText(mig: MigSample, row: (label: string, value: string) => void): void {
  const pending = mig.mode.pending === mig.mode.current ? '' : ` (${mig.mode.pending} after the next reset)`;
  const count = mig.instances === null ? `MIG devices unreadable (${mig.missing.instances?.code ?? '?'})` : `${mig.instances.length} MIG device${mig.instances.length === 1 ? '' : 's'}`;
  row('MIG', `${mig.mode.current}${pending}${mig.mode.current === 'enabled' ? `, ${count}` : ''}`);
  for (const i of mig.instances ?? []) {
    row(`MIG ${i.index}`, `${i.uuid ?? 'unknown uuid'}  (GPU instance ${i.gpuInstanceId ?? '?'}, compute instance ${i.computeInstanceId ?? '?'})`);
    row('  memory', memoryText(i));
    row('  processes', processesText(i));
  }
}

function processesText(i: MigInstanceSample): string {
  return i.processes === null ? `unknown (${i.missing.processes?.code ?? '?'})` : String(i.processes.length);
}

function readingStatus(device: DeviceSample): Record<string, ReadingStatus> {
  const out: Record<string, ReadingStatus> = {};
  for (const reading of READINGS) {
    let reason: NvmlReason | undefined;
    for (const field of reading.fields) reason ??= device.missing[field];
    out[reading.name] = {
      supported: reason === undefined,
      reason: reasonJson(reason),
    };
  }
  return out;
}

/** The `--json` document. */
export function infoDocument(probe: nvml.NvmlProbe, devices: DeviceSample[], mockWarnings: string[] = []): Record<string, unknown> {
  return {
    library_path: probe.libraryPath,
    is_mock: probe.isMock,
    driver_version: probe.system.driverVersion,
    nvml_version: probe.system.nvmlVersion,
    cuda_driver_version: probe.system.cudaDriverVersion,
    device_count: probe.system.deviceCount,
    capabilities: Object.fromEntries(Object.entries(probe.capabilities).map(([k, v]) => [snakeCase(k), v])),
    symbols: probe.symbols,
    mock_warnings: mockWarnings,
    devices: devices.map((d) => ({
      gpu: d.index,
      uuid: d.uuid,
      name: d.name,
      pci_bus_id: d.pciBusId,
      pci_device_id: d.pciDeviceId === null ? null : hex(d.pciDeviceId >>> 16, 4),
      pci_vendor_id: d.pciDeviceId === null ? null : hex(d.pciDeviceId & 0xffff, 4),
      lost: d.lost,
      lost_reason: d.lostReason?.code ?? null,
      memory_total_bytes: d.memoryTotalBytes,
      memory_used_bytes: d.memoryUsedBytes,
      memory_free_bytes: d.memoryFreeBytes,
      memory_reserved_bytes: d.memoryReservedBytes,
      memory_info_version: d.memoryInfoVersion,
      process_record_layout: d.processRecordLayout,
      process_count: d.processes?.length ?? null,
      mig: migDocument(d.mig),
      readings: readingStatus(d),
    })),
  };
}

function hex(value: number, digits: number): string {
  return `0x${value.toString(16).padStart(digits, '0')}`;
}

const CAPABILITY_LABELS: Record<keyof nvml.NvmlCapabilities, string> = {
  memoryInfoV2: 'memory info v2',
  processListV3: 'process lists v3',
  processListV2: 'process lists v2',
  graphicsProcesses: 'graphics processes',
  mpsProcesses: 'MPS processes',
  processUtilization: 'per-process utilization',
  pciInfo: 'PCI info',
  power: 'power',
  temperature: 'temperature',
  clocks: 'clocks',
  utilization: 'utilization',
};

export function infoText(probe: nvml.NvmlProbe, devices: DeviceSample[]): string {
  const lines: string[] = [];
  const s = probe.system;
  const row = (label: string, value: string) => lines.push(`  ${label.padEnd(14)}${value}`);
  lines.push('NVML');
  row('library', `${probe.libraryPath}${probe.isMock ? ' (vramguard mock)' : ''}`);
  row('driver', s.driverVersion ?? 'unknown');
  row('NVML', s.nvmlVersion ?? 'unknown');
  row('CUDA driver', s.cudaDriverVersion ?? 'unknown');
  row('GPUs', String(s.deviceCount ?? 0));
  const entries = Object.entries(probe.capabilities) as Array<[keyof nvml.NvmlCapabilities, boolean]>;
  const has = entries.filter(([, v]) => v).map(([k]) => CAPABILITY_LABELS[k]);
  const lacks = entries.filter(([, v]) => !v).map(([k]) => CAPABILITY_LABELS[k]);
  row('entry points', has.length > 0 ? has.join(', ') : 'none');
  if (lacks.length > 0) row('not exported', lacks.join(', '));

  for (const d of devices) {
    lines.push('');
    lines.push(`GPU ${d.index}  ${d.name ?? 'unknown name'}${d.lost ? `  LOST (${d.lostReason?.code ?? 'GPU_IS_LOST'})` : ''}`);
    row('uuid', d.uuid ?? 'unknown');
    const ids = d.pciDeviceId === null ? '' : `  (device ${hex(d.pciDeviceId >>> 16, 4)}, vendor ${hex(d.pciDeviceId & 0xffff, 4)})`;
    row('pci', `${d.pciBusId ?? 'unknown'}${ids}`);
    row('memory', d.memoryTotalBytes === null && d.missing.memoryTotalBytes ? `unknown (${d.missing.memoryTotalBytes.code})` : memoryText(d));
    if (d.processes !== null) row('processes', `${d.processes.length}  (records: ${d.processRecordLayout ?? '?'})`);
    if (d.mig !== null) migText(d.mig, row);
    const status = readingStatus(d);
    const supported = Object.entries(status).filter(([, r]) => r.supported).map(([name]) => name);
    const unsupported = Object.entries(status)
      .filter(([, r]) => !r.supported)
      .map(([name, r]) => `${name} (${r.reason?.code ?? '?'})`);
    row('supports', supported.length > 0 ? supported.join(', ') : 'nothing');
    if (unsupported.length > 0) row('unsupported', unsupported.join(', '));
  }
  return `${lines.join('\n')}\n`;
}

export function runInfo(options: InfoOptions): number {
  const { probe, devices } = openNvml(options);
  const { snapshot } = nvml.readOnce({ devices });
  const warnings = new MockWarnings('info');
  warnings.report();
  process.stdout.write(
    options.json ? `${JSON.stringify(infoDocument(probe, snapshot.devices, warnings.all()), null, 2)}\n` : infoText(probe, snapshot.devices),
  );
  return EXIT_OK;
}
