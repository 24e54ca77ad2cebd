// The record schema of `vramguard sample`: one record per device per sampling pass, and one per MIG
// device after its GPU's (mig_index set; its memory and processes, the board's readings null there),
// flat keys in snake_case, base units (bytes, ratios 0..1, watts, degrees Celsius, hertz), ISO-8601
// timestamps, MIG keys named as in `info --json`. An absent reading is null (an empty cell in CSV). The
// README's "Command line" section documents it.
import type { DeviceSample, MigInstanceSample, Snapshot } from '../types';

export type FieldType = 'string' | 'integer' | 'number' | 'boolean';

export interface SampleField {
  name: string;
  type: FieldType;
  /** May be null. */
  nullable: boolean;
  description: string;
  /** `mig`: the MIG device of a MIG record (null on the GPU's own record). */
  read: (device: DeviceSample, snapshot: Snapshot, mig: MigInstanceSample | null) => string | number | boolean | null;
}

function sumProcessBytes(processes: DeviceSample['processes']): number | null {
  if (processes === null) return null;
  let sum = 0;
  for (const p of processes) sum += p.usedBytes ?? 0;
  return sum;
}

type Reading = string | number | boolean | null;

/** A reading of the board: the GPU's record only (null on its MIG devices' records, so nothing counts twice). */
function board(read: (d: DeviceSample) => Reading): SampleField['read'] {
  return (d, _s, mig) => (mig ? null : read(d));
}

/** A reading both have: the MIG device's on its record, the GPU's on the GPU's. */
function own(read: (m: Pick<DeviceSample, 'memoryTotalBytes' | 'memoryUsedBytes' | 'memoryFreeBytes' | 'memoryReservedBytes' | 'processes'>) => Reading): SampleField['read'] {
  return (d, _s, mig) => read(mig ?? d);
}

export const SAMPLE_FIELDS: readonly SampleField[] = [
  {
    name: 'timestamp',
    type: 'string',
    nullable: false,
    description: 'start of the sampling pass, ISO-8601 UTC with milliseconds',
    read: (_d, s) => new Date(s.timestamp).toISOString(),
  },
  { name: 'sequence', type: 'integer', nullable: false, description: 'sampling pass number (the same for every device of a pass)', read: (_d, s) => s.sequence },
  { name: 'gpu', type: 'integer', nullable: false, description: 'NVML device index', read: (d) => d.index },
  { name: 'uuid', type: 'string', nullable: true, description: 'GPU UUID (GPU-...)', read: (d) => d.uuid },
  { name: 'name', type: 'string', nullable: true, description: 'product name', read: (d) => d.name },
  { name: 'pci_bus_id', type: 'string', nullable: true, description: 'PCI bus id (DDDDDDDD:BB:DD.F)', read: (d) => d.pciBusId },
  { name: 'lost', type: 'boolean', nullable: false, description: 'true while the GPU is lost (its readings are then null)', read: (d) => d.lost },
  { name: 'lost_reason', type: 'string', nullable: true, description: "NVML's code for the loss (GPU_IS_LOST, GPU_NOT_FOUND), else null", read: (d) => d.lostReason?.code ?? null },
  { name: 'memory_total_bytes', type: 'integer', nullable: true, description: "memory on the board (a MIG record: the MIG device's)", read: own((m) => m.memoryTotalBytes) },
  { name: 'memory_used_bytes', type: 'integer', nullable: true, description: "used memory (memory info v2: without the driver's reservation)", read: own((m) => m.memoryUsedBytes) },
  { name: 'memory_free_bytes', type: 'integer', nullable: true, description: 'free memory', read: own((m) => m.memoryFreeBytes) },
  { name: 'memory_reserved_bytes', type: 'integer', nullable: true, description: "driver's reservation (null with memory info v1, where used includes it)", read: own((m) => m.memoryReservedBytes) },
  { name: 'gpu_utilization_ratio', type: 'number', nullable: true, description: 'fraction of the last sample period a kernel ran, 0..1 (board readings: null on MIG records)', read: board((d) => d.gpuUtilizationRatio) },
  { name: 'memory_utilization_ratio', type: 'number', nullable: true, description: 'fraction of the period memory was read or written, 0..1', read: board((d) => d.memoryUtilizationRatio) },
  { name: 'temperature_celsius', type: 'number', nullable: true, description: 'GPU core temperature', read: board((d) => d.temperatureCelsius) },
  { name: 'power_usage_watts', type: 'number', nullable: true, description: 'board power draw', read: board((d) => d.powerUsageWatts) },
  { name: 'power_limit_watts', type: 'number', nullable: true, description: 'enforced power limit', read: board((d) => d.powerLimitWatts) },
  { name: 'sm_clock_hertz', type: 'integer', nullable: true, description: 'SM clock', read: board((d) => d.smClockHertz) },
  { name: 'memory_clock_hertz', type: 'integer', nullable: true, description: 'memory clock', read: board((d) => d.memoryClockHertz) },
  {
    name: 'process_count',
    type: 'integer',
    nullable: true,
    description: "processes using the GPU (compute, graphics and MPS lists merged by pid; a MIG record: the MIG device's)",
    read: own((m) => m.processes?.length ?? null),
  },
  {
    name: 'process_memory_used_bytes',
    type: 'integer',
    nullable: true,
    description: 'memory those processes use, summed (processes NVML cannot attribute count 0)',
    read: own((m) => sumProcessBytes(m.processes)),
  },
  {
    name: 'mig_mode',
    type: 'string',
    nullable: true,
    description: 'MIG mode now, enabled or disabled (null where the GPU or driver cannot do MIG)',
    read: (d) => d.mig?.mode.current ?? null,
  },
  { name: 'mig_pending_mode', type: 'string', nullable: true, description: 'MIG mode after the next GPU reset', read: (d) => d.mig?.mode.pending ?? null },
  {
    name: 'mig_instances_reason',
    type: 'string',
    nullable: true,
    description: "NVML's code when the GPU's MIG devices could not be listed, else null",
    read: board((d) => d.mig?.missing.instances?.code ?? null),
  },
  { name: 'mig_index', type: 'integer', nullable: true, description: "a MIG record: the MIG device's index under its GPU; null on a GPU's record", read: (_d, _s, m) => m?.index ?? null },
  { name: 'mig_uuid', type: 'string', nullable: true, description: "a MIG record: the MIG device's UUID (MIG-...)", read: (_d, _s, m) => m?.uuid ?? null },
  { name: 'gpu_instance_id', type: 'integer', nullable: true, description: "a MIG record: its GPU instance id", read: (_d, _s, m) => m?.gpuInstanceId ?? null },
  { name: 'compute_instance_id', type: 'integer', nullable: true, description: "a MIG record: its compute instance id", read: (_d, _s, m) => m?.computeInstanceId ?? null },
];

/** The records of one device in a pass: its own, then one per MIG device it lists (MIG enabled). */
export function deviceRecords(device: DeviceSample): Array<MigInstanceSample | null> {
  const instances = device.mig?.mode.current === 'enabled' && !device.lost ? (device.mig.instances ?? []) : [];
  return [null, ...instances];
}

export const FIELD_NAMES: readonly string[] = SAMPLE_FIELDS.map((f) => f.name);

const byName = new Map(SAMPLE_FIELDS.map((f) => [f.name, f]));

export function fieldByName(name: string): SampleField | undefined {
  return byName.get(name);
}
