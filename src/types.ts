// The shapes the native sampler produces. Base units throughout: bytes, ratios 0..1, watts, degrees
// Celsius, hertz, milliseconds since the epoch. Every reading may be null; `missing` says why.
import type { NvmlReason } from './errors';

export type ProcessType = 'compute' | 'graphics' | 'mps';

/** Which record layout the process lists were read with (see README, "driver eras"). */
/** How the process lists were read: detail-list-v1 is nvmlDeviceGetRunningProcessDetailList (535.104.05 on). */
export type ProcessRecordLayout = 'detail-list-v1' | 'v3' | 'v3-535-32byte' | 'v2' | 'v1';

export interface ProcessSample {
  pid: number;
  /** Null when NVML cannot attribute memory to the process (it reports "not available"). */
  usedBytes: number | null;
  /** The lists the pid appeared in. */
  types: ProcessType[];
  /** MIG instance ids; null outside MIG mode or on drivers that do not report them. */
  gpuInstanceId: number | null;
  computeInstanceId: number | null;
  /** Null when the device cannot report per-process utilization. */
  smUtilizationRatio: number | null;
  memoryUtilizationRatio: number | null;
  encoderUtilizationRatio: number | null;
  decoderUtilizationRatio: number | null;
}

export type MigModeState = 'enabled' | 'disabled';

/** One MIG device (a compute instance) of a MIG-enabled GPU, read through its own MIG device handle. */
export interface MigInstanceSample {
  /** Its index under the parent GPU (nvmlDeviceGetMigDeviceHandleByIndex). */
  index: number;
  /** "MIG-…" (drivers 470 on). A guard or Sampler may target the instance by it. */
  uuid: string | null;
  gpuInstanceId: number | null;
  computeInstanceId: number | null;
  /** The instance's own memory (its slice of the board), not the parent's. */
  memoryTotalBytes: number | null;
  memoryUsedBytes: number | null;
  memoryFreeBytes: number | null;
  memoryReservedBytes: number | null;
  memoryInfoVersion: 1 | 2 | null;
  processRecordLayout: ProcessRecordLayout | null;
  /** The compute processes in this instance (no per-process utilization: NVML has none on MIG). */
  processes: ProcessSample[] | null;
  missing: Partial<Record<string, NvmlReason>>;
}

export interface MigSample {
  /** MIG mode now, and after the next activation (a GPU reset on A100). */
  mode: { current: MigModeState; pending: MigModeState };
  /** The MIG devices, empty while MIG is disabled; null when they could not be listed (missing.instances). */
  instances: MigInstanceSample[] | null;
  missing: Partial<Record<string, NvmlReason>>;
}

export interface DeviceSample {
  index: number;
  uuid: string | null;
  name: string | null;
  pciBusId: string | null;
  /** PCI device id << 16 | vendor id. */
  pciDeviceId: number | null;
  /** True while the GPU is lost (fell off the bus, XID 79, ...): its readings are null meanwhile. */
  lost: boolean;
  lostReason: NvmlReason | null;
  memoryTotalBytes: number | null;
  /** With memory info v2, excludes the driver's reservation; with v1 it includes it. */
  memoryUsedBytes: number | null;
  memoryFreeBytes: number | null;
  /** Only with memory info v2. */
  memoryReservedBytes: number | null;
  /** 2 or 1: which nvmlDeviceGetMemoryInfo version answered. */
  memoryInfoVersion: 1 | 2 | null;
  gpuUtilizationRatio: number | null;
  memoryUtilizationRatio: number | null;
  temperatureCelsius: number | null;
  powerUsageWatts: number | null;
  powerLimitWatts: number | null;
  smClockHertz: number | null;
  memoryClockHertz: number | null;
  processRecordLayout: ProcessRecordLayout | null;
  /** Null when the process list could not be read (see missing.processes). */
  processes: ProcessSample[] | null;
  /** False when NVML had no new per-process utilization samples this pass (values carried over). */
  processUtilizationFresh: boolean;
  /**
   * Per-process utilization samples the driver returned and the reader refused this pass (pid in no
   * process list, a value above 100%, a timestamp not newer than the last or in the future), and since
   * the reader started.
   */
  utilizationSamplesRejected: number;
  utilizationSamplesRejectedTotal: number;
  /**
   * MIG mode and instances; null (missing.mig) where the GPU or the driver cannot do MIG. With MIG
   * enabled an unprivileged reader gets NO_PERMISSION for the parent's memory and processes: read the
   * instances'.
   */
  mig: MigSample | null;
  /**
   * Set on a MIG device's view (a Sampler or guard targeting a MIG- UUID): the parent GPU's UUID. The
   * view's uuid, memory and processes are then the MIG device's; temperature, power and clocks the board's.
   */
  migParentUuid?: string | null;
  /** When this device was read, milliseconds since the epoch. */
  sampledAt: number;
  readDurationMs: number;
  /** For each null field (and `processes`, `processUtilization`): NVML's reason. */
  missing: Partial<Record<string, NvmlReason>>;
}

export interface Snapshot {
  /** Increases by one per sampling pass. */
  sequence: number;
  /** Start of the pass, milliseconds since the epoch. */
  timestamp: number;
  passDurationMs: number;
  devices: DeviceSample[];
}

export interface SystemInfo {
  driverVersion: string | null;
  nvmlVersion: string | null;
  /** e.g. "12.4" */
  cudaDriverVersion: string | null;
  deviceCount: number | null;
  /** Record size the _v3 process lists are read with: 32 on drivers 535.43-535.86, else 24. */
  v3ProcessRecordBytes: 24 | 32;
  /** What decided it (the driver version, the exported symbols, or both), one line. */
  v3ProcessRecordEvidence: string;
  missing: Partial<Record<string, NvmlReason>>;
}
