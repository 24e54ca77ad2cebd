// Per-process GPU series (`--processes`, or library mode with processes on): memory and utilization per
// pid, labelled by the GPU and, for a process in a MIG device, that MIG device (mig_uuid, as the
// vramguard_mig_* series name it; empty on a GPU without MIG devices, the way dcgm-exporter leaves its
// GPU_I_ID out there). Filled from the latest snapshot at scrape time: no NVML call.
import type { Registry } from 'prom-client';

import { attributedProcesses } from '../mig';
import type { DeviceSample, ProcessSample, Snapshot } from '../types';
import { promClient } from './prom';

export const PROCESS_LABELS = ['gpu', 'uuid', 'mig_uuid', 'pid', 'command'] as const;

const PROCESS_GAUGES: ReadonlyArray<{ name: string; help: string; read: (p: ProcessSample) => number | null }> = [
  { name: 'vramguard_process_memory_used_bytes', help: 'GPU memory a process uses, in bytes.', read: (p) => p.usedBytes },
  {
    name: 'vramguard_process_sm_utilization_ratio',
    help: "Fraction of the GPU's SM time a process used over the driver's last samples (0..1; NVML has none in MIG devices).",
    read: (p) => p.smUtilizationRatio,
  },
  {
    name: 'vramguard_process_memory_utilization_ratio',
    help: "Fraction of the GPU's memory-bandwidth time a process used over the driver's last samples (0..1; NVML has none in MIG devices).",
    read: (p) => p.memoryUtilizationRatio,
  },
];

/** What the process series read besides the snapshot: the board's labels, commands, remembered MIG devices. */
export interface ProcessLabelSource {
  labels(device: DeviceSample): { gpu: string; uuid: string };
  command(pid: number): string;
  /** The MIG device last seen with these instance ids on the GPU, or undefined. */
  migUuidOf(gpu: number, gpuInstanceId: number, computeInstanceId: number | null): string | undefined;
}

/** A device's processes with their series' labels, each process once. */
export function processSeries(device: DeviceSample, source: ProcessLabelSource): Array<{ labels: Record<(typeof PROCESS_LABELS)[number], string>; process: ProcessSample }> {
  const board = source.labels(device);
  const uuid = device.migParentUuid ?? board.uuid;
  // A MIG device's view (a sampler or guard targeting a MIG- UUID): all of its processes are in it.
  const view = device.migParentUuid !== undefined && device.migParentUuid !== null ? (device.uuid ?? '') : null;
  return attributedProcesses(device).map(({ process, mig }) => {
    // A process whose MIG device is not listed this pass keeps the one it was seen in: a series' labels never change.
    const remembered = process.gpuInstanceId === null ? undefined : source.migUuidOf(device.index, process.gpuInstanceId, process.computeInstanceId);
    const migUuid = view ?? mig?.uuid ?? remembered ?? '';
    return { labels: { gpu: board.gpu, uuid, mig_uuid: migUuid, pid: String(process.pid), command: source.command(process.pid) }, process };
  });
}

/** Registers the per-process gauges on `registry`. */
export function registerProcessMetrics(registry: Registry, latest: () => Snapshot | null, source: ProcessLabelSource): void {
  const { Gauge } = promClient();
  for (const spec of PROCESS_GAUGES) {
    new Gauge({
      name: spec.name,
      help: `${spec.help} Absent when NVML cannot attribute it.`,
      labelNames: PROCESS_LABELS,
      registers: [registry],
      collect() {
        this.reset();
        for (const device of latest()?.devices ?? []) {
          for (const { labels, process } of processSeries(device, source)) {
            const value = spec.read(process);
            if (value !== null) this.set(labels, value);
          }
        }
      },
    });
  }
}
