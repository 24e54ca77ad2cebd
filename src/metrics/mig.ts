// MIG metrics: each MIG device's memory and process count, and each GPU's MIG mode, filled from the
// latest snapshot at scrape time (no NVML call). Series of their own, apart from the board's
// vramguard_gpu_memory_*: summing a board and its MIG devices would count the memory twice.
import type { Registry } from 'prom-client';

import type { MigInstanceSample, Snapshot } from '../types';
import { promClient } from './prom';

const MIG_LABELS = ['gpu', 'uuid', 'mig_uuid', 'gpu_instance', 'compute_instance'] as const;

const MIG_GAUGES: ReadonlyArray<{ name: string; help: string; read: (i: MigInstanceSample) => number | null }> = [
  { name: 'vramguard_mig_memory_total_bytes', help: "A MIG device's memory (its slice of the board), in bytes.", read: (i) => i.memoryTotalBytes },
  {
    name: 'vramguard_mig_memory_used_bytes',
    help: "Used memory of a MIG device, in bytes (memory info v2 leaves the driver's reservation out; v1 includes it).",
    read: (i) => i.memoryUsedBytes,
  },
  { name: 'vramguard_mig_memory_free_bytes', help: 'Free memory of a MIG device, in bytes.', read: (i) => i.memoryFreeBytes },
  { name: 'vramguard_mig_memory_reserved_bytes', help: 'Memory the driver reserves in a MIG device, in bytes (memory info v2 only).', read: (i) => i.memoryReservedBytes },
  { name: 'vramguard_mig_processes', help: 'Compute processes in a MIG device.', read: (i) => i.processes?.length ?? null },
];

/** Registers the MIG metrics on `registry`; `labels` gives a device's gpu and uuid labels (the board's). */
export function registerMigMetrics(
  registry: Registry,
  latest: () => Snapshot | null,
  labels: (device: Snapshot['devices'][number]) => { gpu: string; uuid: string },
): void {
  const { Gauge } = promClient();
  const registers = [registry];
  new Gauge({
    name: 'vramguard_gpu_mig_enabled',
    help: 'Whether MIG is enabled on the GPU now (1) or not (0); absent where the GPU or driver cannot do MIG.',
    labelNames: ['gpu', 'uuid', 'pending'],
    registers,
    collect() {
      this.reset();
      for (const device of latest()?.devices ?? []) {
        if (!device.mig) continue;
        const board = labels(device);
        this.set({ ...board, uuid: device.migParentUuid ?? board.uuid, pending: device.mig.mode.pending }, device.mig.mode.current === 'enabled' ? 1 : 0);
      }
    },
  });
  for (const spec of MIG_GAUGES) {
    new Gauge({
      name: spec.name,
      help: spec.help,
      labelNames: MIG_LABELS,
      registers,
      collect() {
        this.reset();
        for (const device of latest()?.devices ?? []) {
          const board = labels(device);
          for (const instance of device.mig?.instances ?? []) {
            const value = spec.read(instance);
            if (value === null) continue;
            this.set(
              {
                gpu: board.gpu,
                uuid: device.migParentUuid ?? board.uuid,
                mig_uuid: instance.uuid ?? '',
                gpu_instance: instance.gpuInstanceId === null ? '' : String(instance.gpuInstanceId),
                compute_instance: instance.computeInstanceId === null ? '' : String(instance.computeInstanceId),
              },
              value,
            );
          }
        }
      },
    });
  }
}
