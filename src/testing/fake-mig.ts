// MIG devices for FakeMonitor: the state a test sets (each MIG device's memory and processes) and the
// `mig` part of a sample built from it, shaped as the real Sampler's snapshots are.
import type { MigInstanceSample, MigModeState, MigSample, ProcessSample } from '../types';

/** One MIG device (a compute instance) of a fake GPU. */
export interface FakeMigInstanceState {
  /** "MIG-…": a guard or the monitor's watch() may target it. */
  uuid: string;
  gpuInstanceId: number;
  /** Default 0. */
  computeInstanceId?: number;
  /** The MIG device's memory: its slice of the board. */
  totalBytes: number;
  /** Used bytes in it not attributed to any process. */
  otherUsedBytes?: number;
  /** pid -> bytes (null: NVML "not available"). */
  processes?: Record<number, number | null>;
}

/** A fake GPU's MIG mode and MIG devices. */
export interface FakeMigState {
  /** Default 'enabled'; while 'disabled' the GPU lists no MIG devices. */
  mode?: MigModeState;
  /** Default: the current mode. */
  pendingMode?: MigModeState;
  instances: FakeMigInstanceState[];
  /** The MIG device list cannot be read (its `instances` are null), e.g. { code: 'UNKNOWN', returnValue: 999 }. */
  instancesError?: { code: string; returnValue: number };
}

/** A process record as the fakes publish it: compute, with the MIG instance ids when it runs in one. */
function fakeProcess(pid: number, bytes: number | null, instance: FakeMigInstanceState | null, utilization: number | null): ProcessSample {
  return {
    pid,
    usedBytes: bytes,
    types: ['compute'],
    gpuInstanceId: instance ? instance.gpuInstanceId : null,
    computeInstanceId: instance ? (instance.computeInstanceId ?? 0) : null,
    smUtilizationRatio: utilization,
    memoryUtilizationRatio: utilization,
    encoderUtilizationRatio: utilization,
    decoderUtilizationRatio: utilization,
  };
}

export function processList(processes: Record<number, number | null> | undefined, instance: FakeMigInstanceState | null): ProcessSample[] {
  // NVML has no per-process utilization on MIG devices: null there, 0 on a whole GPU.
  return Object.entries(processes ?? {})
    .map(([pid, bytes]) => fakeProcess(Number(pid), bytes, instance, instance ? null : 0))
    .sort((a, b) => a.pid - b.pid);
}

export function sumBytes(processes: Record<number, number | null> | undefined): number {
  return Object.values(processes ?? {}).reduce<number>((sum, b) => sum + (b ?? 0), 0);
}

/** A MIG device's used bytes: its processes and the use no process accounts for. */
export function instanceUsedBytes(instance: FakeMigInstanceState): number {
  return (instance.otherUsedBytes ?? 0) + sumBytes(instance.processes);
}

/** The sample's `mig`: mode, and the MIG devices with their memory and processes (or why they are unreadable). */
export function fakeMigSample(mig: FakeMigState): MigSample {
  const current = mig.mode ?? 'enabled';
  const mode = { current, pending: mig.pendingMode ?? current };
  if (current === 'disabled') return { mode, instances: [], missing: {} };
  if (mig.instancesError) {
    return { mode, instances: null, missing: { instances: { ...mig.instancesError, function: 'nvmlDeviceGetMigDeviceHandleByIndex' } } };
  }
  const instances = mig.instances.map((instance, index): MigInstanceSample => {
    const used = instanceUsedBytes(instance);
    return {
      index,
      uuid: instance.uuid,
      gpuInstanceId: instance.gpuInstanceId,
      computeInstanceId: instance.computeInstanceId ?? 0,
      memoryTotalBytes: instance.totalBytes,
      memoryUsedBytes: used,
      memoryFreeBytes: instance.totalBytes - used,
      memoryReservedBytes: 0,
      memoryInfoVersion: 2,
      processRecordLayout: 'v3',
      processes: processList(instance.processes, instance),
      missing: {},
    };
  });
  return { mode, instances, missing: {} };
}
