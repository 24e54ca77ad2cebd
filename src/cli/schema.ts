// The record schema of `vramguard sample`: one record per device per sampling pass, flat keys in
// snake_case, base units (bytes, ratios 0..1, watts, degrees Celsius, hertz), ISO-8601 timestamps.
// An absent reading is null (an empty cell in CSV). The README's "Command line" section documents it.
import type { DeviceSample, Snapshot } from '../types';

export type FieldType = 'string' | 'integer' | 'number' | 'boolean';

export interface SampleField {
  name: string;
  type: FieldType;
  /** May be null. */
  nullable: boolean;
  description: string;
  read: (device: DeviceSample, snapshot: Snapshot) => string | number | boolean | null;
}

function sumProcessBytes(device: DeviceSample): number | null {
  if (device.processes === null) return null;
  let sum = 0;
  for (const p of device.processes) sum += p.usedBytes ?? 0;
  return sum;
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
  { name: 'memory_total_bytes', type: 'integer', nullable: true, description: 'memory on the board', read: (d) => d.memoryTotalBytes },
  { name: 'memory_used_bytes', type: 'integer', nullable: true, description: "used memory (memory info v2: without the driver's reservation)", read: (d) => d.memoryUsedBytes },
  { name: 'memory_free_bytes', type: 'integer', nullable: true, description: 'free memory', read: (d) => d.memoryFreeBytes },
  { name: 'memory_reserved_bytes', type: 'integer', nullable: true, description: "driver's reservation (null with memory info v1, where used includes it)", read: (d) => d.memoryReservedBytes },
  { name: 'gpu_utilization_ratio', type: 'number', nullable: true, description: 'fraction of the last sample period a kernel ran, 0..1', read: (d) => d.gpuUtilizationRatio },
  { name: 'memory_utilization_ratio', type: 'number', nullable: true, description: 'fraction of the period memory was read or written, 0..1', read: (d) => d.memoryUtilizationRatio },
  { name: 'temperature_celsius', type: 'number', nullable: true, description: 'GPU core temperature', read: (d) => d.temperatureCelsius },
  { name: 'power_usage_watts', type: 'number', nullable: true, description: 'board power draw', read: (d) => d.powerUsageWatts },
  { name: 'power_limit_watts', type: 'number', nullable: true, description: 'enforced power limit', read: (d) => d.powerLimitWatts },
  { name: 'sm_clock_hertz', type: 'integer', nullable: true, description: 'SM clock', read: (d) => d.smClockHertz },
  { name: 'memory_clock_hertz', type: 'integer', nullable: true, description: 'memory clock', read: (d) => d.memoryClockHertz },
  { name: 'process_count', type: 'integer', nullable: true, description: 'processes using the GPU (compute, graphics and MPS lists merged by pid)', read: (d) => d.processes?.length ?? null },
  {
    name: 'process_memory_used_bytes',
    type: 'integer',
    nullable: true,
    description: 'memory those processes use, summed (processes NVML cannot attribute count 0)',
    read: sumProcessBytes,
  },
];

export const FIELD_NAMES: readonly string[] = SAMPLE_FIELDS.map((f) => f.name);

const byName = new Map(SAMPLE_FIELDS.map((f) => [f.name, f]));

export function fieldByName(name: string): SampleField | undefined {
  return byName.get(name);
}
