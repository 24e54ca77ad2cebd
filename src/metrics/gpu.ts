// GPU metrics with prom-client, shared by `vramguard serve` (on registries of its own) and library mode
// (`guard.metrics(registry)`, on the host's registry).
//
// Every gauge is filled by a collect() hook from sampler.latest(), the snapshot the native thread last
// published: a scrape never calls NVML. Counters are kept in ExporterState, which sees every sampling
// pass once (ExporterState.observe), and are also reported from collect(). That keeps all state out of
// the prom-client objects, so one registry per exposition format can be built from the same state
// (prom-client renames counters in place when it writes OpenMetrics, so the two formats must not share
// metric objects).
import type { Registry, RegistryContentType } from 'prom-client';

import { ProcessDirectory } from '../proc';
import { attributedProcesses } from '../mig';
import type { DeviceSample, Snapshot, SystemInfo } from '../types';
import { registerMigMetrics } from './mig';
import { type ProcessLabelSource, registerProcessMetrics } from './processes';
import { snakeCase } from './naming';
import { promClient } from './prom';

/** Where the metrics read: a Sampler, or anything with its latest(). */
export interface SnapshotSource {
  latest(): Snapshot | null;
}

/**
 * Codes that are not failures: the device or driver cannot report that reading (NOT_SUPPORTED; an old
 * driver without the entry point, e.g. no reserved memory before memory info v2), or it had nothing new.
 */
function isFailure(field: string, code: string): boolean {
  if (code === 'NOT_SUPPORTED' || code === 'FUNCTION_NOT_FOUND') return false;
  if (field === 'processUtilization' && code === 'NOT_FOUND') return false;
  return true;
}

/** Identity fields: read once, so their absence is not counted on every pass. */
const IDENTITY_FIELDS = new Set(['uuid', 'name', 'pciBusId', 'pciDeviceId']);

export class ExporterState implements ProcessLabelSource {
  /** vramguard_nvml_errors_total, by "gpu\0field\0code". */
  readonly errors = new Map<string, { gpu: string; field: string; code: string; count: number }>();
  /** vramguard_gpu_lost_events_total, by gpu index. */
  readonly lostEvents = new Map<string, number>();
  /** Identity per device index, remembered so a lost GPU keeps its labels. */
  readonly identities = new Map<number, { uuid: string; name: string; pciBusId: string }>();
  readonly directory = new ProcessDirectory();
  /** MIG device UUID by "gpu/gpu instance/compute instance", as last listed (process series keep theirs). */
  private readonly migUuids = new Map<string, string>();
  private lastSequence = -1;
  private wasLost = new Map<number, boolean>();

  private readonly systemOf: () => SystemInfo | null;
  private readonly intervalOf: () => number;

  /** system and the interval may be functions: library mode reads them from guards added later. */
  constructor(
    readonly sampler: SnapshotSource,
    system: SystemInfo | null | (() => SystemInfo | null),
    private readonly settings: { processes: boolean; intervalMs: number | (() => number) },
  ) {
    this.systemOf = typeof system === 'function' ? system : () => system;
    const interval = settings.intervalMs;
    this.intervalOf = typeof interval === 'function' ? interval : () => interval;
  }

  get system(): SystemInfo | null {
    return this.systemOf();
  }

  get options(): { processes: boolean; intervalMs: number } {
    return { processes: this.settings.processes, intervalMs: this.intervalOf() };
  }

  /** Counts what a pass shows; each pass is counted once however often it is observed. */
  observe(snapshot: Snapshot): void {
    if (snapshot.sequence <= this.lastSequence) return;
    this.lastSequence = snapshot.sequence;
    const pids: number[] = [];
    for (const device of snapshot.devices) {
      const gpu = String(device.index);
      this.rememberIdentity(device);
      const lostBefore = this.wasLost.get(device.index) ?? false;
      if (device.lost) {
        if (!lostBefore) this.lostEvents.set(gpu, (this.lostEvents.get(gpu) ?? 0) + 1);
        this.countError(gpu, 'device', device.lostReason?.code ?? 'GPU_IS_LOST');
      } else {
        for (const [field, reason] of Object.entries(device.missing)) {
          if (!reason || IDENTITY_FIELDS.has(field) || !isFailure(field, reason.code)) continue;
          this.countError(gpu, snakeCase(field), reason.code);
        }
      }
      this.wasLost.set(device.index, device.lost);
      for (const instance of device.mig?.instances ?? []) {
        if (instance.uuid !== null && instance.gpuInstanceId !== null) {
          this.migUuids.set(`${device.index}/${instance.gpuInstanceId}/${instance.computeInstanceId}`, instance.uuid);
        }
      }
      if (this.options.processes) for (const { process } of attributedProcesses(device)) pids.push(process.pid);
    }
    if (this.options.processes) this.directory.refresh(pids);
  }

  private countError(gpu: string, field: string, code: string): void {
    const key = `${gpu}\0${field}\0${code}`;
    const entry = this.errors.get(key);
    if (entry) entry.count += 1;
    else this.errors.set(key, { gpu, field, code, count: 1 });
  }

  private rememberIdentity(device: DeviceSample): void {
    const known = this.identities.get(device.index);
    if (device.uuid !== null || !known) {
      this.identities.set(device.index, {
        uuid: device.uuid ?? known?.uuid ?? '',
        name: device.name ?? known?.name ?? '',
        pciBusId: device.pciBusId ?? known?.pciBusId ?? '',
      });
    }
  }

  labels(device: DeviceSample): { gpu: string; uuid: string } {
    return { gpu: String(device.index), uuid: device.uuid ?? this.identities.get(device.index)?.uuid ?? '' };
  }

  command(pid: number): string {
    return this.directory.get(pid)?.name ?? '';
  }

  migUuidOf(gpu: number, gpuInstanceId: number, computeInstanceId: number | null): string | undefined {
    return this.migUuids.get(`${gpu}/${gpuInstanceId}/${computeInstanceId}`);
  }
}

type DeviceReading = (device: DeviceSample) => number | null;

const DEVICE_GAUGES: ReadonlyArray<{ name: string; help: string; read: DeviceReading }> = [
  { name: 'vramguard_gpu_memory_total_bytes', help: 'Memory on the board, in bytes.', read: (d) => d.memoryTotalBytes },
  {
    name: 'vramguard_gpu_memory_used_bytes',
    help: "Used memory, in bytes (memory info v2 leaves the driver's reservation out; v1 includes it).",
    read: (d) => d.memoryUsedBytes,
  },
  { name: 'vramguard_gpu_memory_free_bytes', help: 'Free memory, in bytes.', read: (d) => d.memoryFreeBytes },
  {
    name: 'vramguard_gpu_memory_reserved_bytes',
    help: 'Memory the driver reserves, in bytes (memory info v2 only).',
    read: (d) => d.memoryReservedBytes,
  },
  {
    name: 'vramguard_gpu_utilization_ratio',
    help: "Fraction of the driver's last sample period during which a kernel ran (0..1).",
    read: (d) => d.gpuUtilizationRatio,
  },
  {
    name: 'vramguard_gpu_memory_utilization_ratio',
    help: "Fraction of the driver's last sample period during which memory was read or written (0..1).",
    read: (d) => d.memoryUtilizationRatio,
  },
  { name: 'vramguard_gpu_temperature_celsius', help: 'GPU core temperature, in degrees Celsius.', read: (d) => d.temperatureCelsius },
  { name: 'vramguard_gpu_power_usage_watts', help: 'Board power draw, in watts.', read: (d) => d.powerUsageWatts },
  { name: 'vramguard_gpu_power_limit_watts', help: 'Enforced power limit, in watts.', read: (d) => d.powerLimitWatts },
  { name: 'vramguard_gpu_sm_clock_hertz', help: 'SM clock, in hertz.', read: (d) => d.smClockHertz },
  { name: 'vramguard_gpu_memory_clock_hertz', help: 'Memory clock, in hertz.', read: (d) => d.memoryClockHertz },
  {
    name: 'vramguard_gpu_processes',
    help: 'Processes using the GPU (compute, graphics and MPS lists merged by pid).',
    read: (d) => d.processes?.length ?? null,
  },
];

/**
 * A registry with every metric, filled from `state` at each scrape. `contentType` picks the exposition
 * format: Registry.PROMETHEUS_CONTENT_TYPE or Registry.OPENMETRICS_CONTENT_TYPE.
 */
export function buildRegistry(state: ExporterState, contentType: RegistryContentType): Registry<RegistryContentType> {
  const registry = new (promClient().Registry)<RegistryContentType>();
  registry.setContentType(contentType);
  registerGpuMetrics(registry as Registry, state);
  return registry;
}

/** Registers every GPU metric on `registry`, each filled from `state` by its collect() hook. */
export function registerGpuMetrics(registry: Registry, state: ExporterState): void {
  const { Counter, Gauge } = promClient();
  const registers = [registry];
  const latest = (): Snapshot | null => state.sampler.latest();

  new Gauge({
    name: 'vramguard_gpu_info',
    help: 'GPU identity; always 1.',
    labelNames: ['gpu', 'uuid', 'name', 'pci_bus_id', 'driver_version'],
    registers,
    collect() {
      this.reset();
      const snapshot = latest();
      if (!snapshot) return;
      for (const device of snapshot.devices) {
        const id = state.identities.get(device.index);
        this.set(
          {
            gpu: String(device.index),
            uuid: device.uuid ?? id?.uuid ?? '',
            name: device.name ?? id?.name ?? '',
            pci_bus_id: device.pciBusId ?? id?.pciBusId ?? '',
            driver_version: state.system?.driverVersion ?? '',
          },
          1,
        );
      }
    },
  });

  new Gauge({
    name: 'vramguard_gpu_lost',
    help: 'Whether the GPU is lost (1: fell off the bus or NVML reports GPU_IS_LOST; its other readings are absent).',
    labelNames: ['gpu', 'uuid'],
    registers,
    collect() {
      this.reset();
      for (const device of latest()?.devices ?? []) this.set(state.labels(device), device.lost ? 1 : 0);
    },
  });

  for (const spec of DEVICE_GAUGES) {
    new Gauge({
      name: spec.name,
      help: spec.help,
      labelNames: ['gpu', 'uuid'],
      registers,
      collect() {
        this.reset();
        for (const device of latest()?.devices ?? []) {
          const value = spec.read(device);
          if (value !== null) this.set(state.labels(device), value);
        }
      },
    });
  }

  registerMigMetrics(registry, latest, (device) => state.labels(device));

  if (state.options.processes) registerProcessMetrics(registry, latest, state);

  new Counter({
    name: 'vramguard_nvml_errors_total',
    help: 'Failed NVML readings, one per field per sampling pass (NOT_SUPPORTED and FUNCTION_NOT_FOUND are not failures; a lost GPU counts once per pass as field="device").',
    labelNames: ['gpu', 'field', 'code'],
    registers,
    collect() {
      this.reset();
      for (const e of state.errors.values()) this.inc({ gpu: e.gpu, field: e.field, code: e.code }, e.count);
    },
  });

  new Counter({
    name: 'vramguard_gpu_lost_events_total',
    help: 'Times the GPU was found lost (each transition from present to lost).',
    labelNames: ['gpu'],
    registers,
    collect() {
      this.reset();
      for (const [gpu, count] of state.lostEvents) this.inc({ gpu }, count);
    },
  });

  new Counter({
    name: 'vramguard_gpu_process_utilization_samples_rejected_total',
    help: 'Per-process utilization samples the driver returned and the reader refused (pid in no process list, a value above 100%, a timestamp not newer than the last or in the future).',
    labelNames: ['gpu'],
    registers,
    collect() {
      this.reset();
      const snapshot = latest();
      for (const d of snapshot?.devices ?? []) this.inc({ gpu: String(d.index) }, d.utilizationSamplesRejectedTotal);
    },
  });

  new Counter({
    name: 'vramguard_sampler_passes_total',
    help: 'Sampling passes made by the native sampler thread.',
    registers,
    collect() {
      this.reset();
      const snapshot = latest();
      if (snapshot) this.inc(snapshot.sequence);
    },
  });

  new Gauge({
    name: 'vramguard_sample_age_seconds',
    help: 'Seconds since the latest sampling pass started (what this scrape reports is that old).',
    registers,
    collect() {
      const snapshot = latest();
      this.set(snapshot ? Math.max(0, (Date.now() - snapshot.timestamp) / 1000) : Number.POSITIVE_INFINITY);
    },
  });

  new Gauge({
    name: 'vramguard_sample_timestamp_seconds',
    help: 'Unix time at which the latest sampling pass started, in seconds.',
    registers,
    collect() {
      const snapshot = latest();
      this.set(snapshot ? snapshot.timestamp / 1000 : 0);
    },
  });

  new Gauge({
    name: 'vramguard_sample_pass_duration_seconds',
    help: 'How long the latest sampling pass took (every NVML call for every device), in seconds.',
    registers,
    collect() {
      const snapshot = latest();
      this.set(snapshot ? snapshot.passDurationMs / 1000 : 0);
    },
  });

  new Gauge({
    name: 'vramguard_sampler_interval_seconds',
    help: 'Configured sampling interval, in seconds.',
    registers,
    collect() {
      this.set(state.options.intervalMs / 1000);
    },
  });

}
