// A MIG device seen as a device: the parent's sample with the instance's UUID, memory and processes, so
// that the guard, the ledger and the metrics account a MIG target on its own slice of the board. Pure.
import type { NvmlReason } from './errors';
import type { DeviceSample, MigInstanceSample, ProcessSample, Snapshot } from './types';

/** The instance of device with this UUID (case-insensitive), or undefined. */
export function findMigInstance(device: DeviceSample, uuid: string): MigInstanceSample | undefined {
  const wanted = uuid.toLowerCase();
  return device.mig?.instances?.find((i) => i.uuid?.toLowerCase() === wanted);
}

const INSTANCE_FIELDS = ['memoryTotalBytes', 'memoryUsedBytes', 'memoryFreeBytes', 'memoryReservedBytes', 'memoryInfoVersion', 'processRecordLayout', 'processes'] as const;

/** Why the instance cannot be read: the MIG reading that failed, or "no such MIG device now". */
function goneReason(device: DeviceSample): NvmlReason {
  if (device.lost && device.lostReason) return device.lostReason;
  return device.missing.mig ?? device.mig?.missing.instances ?? { code: 'NOT_FOUND', returnValue: 6, function: 'nvmlDeviceGetMigDeviceHandleByIndex' };
}

/**
 * The parent's sample as the MIG device `migUuid` of it: uuid, memory and processes are the instance's
 * (null with the reason when it is gone, e.g. after MIG was reconfigured); board-wide readings
 * (temperature, power, clocks) stay the parent's; `migParentUuid` names the parent.
 */
export function migDeviceView(device: DeviceSample, migUuid: string): DeviceSample {
  const instance = findMigInstance(device, migUuid);
  const missing: Partial<Record<string, NvmlReason>> = { ...device.missing };
  for (const field of INSTANCE_FIELDS) delete missing[field];
  const view: DeviceSample = { ...device, uuid: instance?.uuid ?? migUuid, migParentUuid: device.uuid, missing };
  if (!instance) {
    const reason = goneReason(device);
    for (const field of INSTANCE_FIELDS) {
      (view as unknown as Record<string, unknown>)[field] = null;
      missing[field] = reason;
    }
    return view;
  }
  for (const field of INSTANCE_FIELDS) {
    (view as unknown as Record<string, unknown>)[field] = instance[field];
    if (instance.missing[field]) missing[field] = instance.missing[field];
  }
  return view;
}

/** The snapshot with each targeted GPU (index → MIG UUID) replaced by its MIG device's view. */
export function projectMigTargets(snapshot: Snapshot, targets: ReadonlyMap<number, string>): Snapshot {
  if (targets.size === 0) return snapshot;
  return {
    ...snapshot,
    devices: snapshot.devices.map((d) => {
      const uuid = targets.get(d.index);
      return uuid === undefined ? d : migDeviceView(d, uuid);
    }),
  };
}

/** A process of a device, with the MIG device it runs in (null on a GPU without MIG devices). */
export interface AttributedProcess {
  process: ProcessSample;
  mig: MigInstanceSample | null;
}

/**
 * Every process on the device, each once, with its MIG device: on a MIG-enabled GPU the MIG devices'
 * lists (what an unprivileged reader gets; the parent's list, when readable, holds the same processes with
 * their instance ids), then any process of the parent's list no MIG device listed, matched to a MIG device
 * by its instance ids where one has them. A MIG device's view (migParentUuid set) is that MIG device's.
 */
export function attributedProcesses(device: DeviceSample): AttributedProcess[] {
  const instances = device.mig?.mode.current === 'enabled' ? (device.mig.instances ?? []) : [];
  if (device.migParentUuid !== undefined && device.migParentUuid !== null) {
    const own = device.uuid === null ? undefined : findMigInstance(device, device.uuid);
    return (device.processes ?? []).map((process) => ({ process, mig: own ?? null }));
  }
  const out: AttributedProcess[] = [];
  const listed = new Set<number>(); // a process sees one MIG device (CUDA enumerates only one)
  for (const mig of instances) {
    for (const process of mig.processes ?? []) {
      out.push({ process, mig });
      listed.add(process.pid);
    }
  }
  for (const process of device.processes ?? []) {
    if (listed.has(process.pid)) continue;
    const mig = instances.find((i) => i.gpuInstanceId !== null && i.gpuInstanceId === process.gpuInstanceId && i.computeInstanceId === process.computeInstanceId);
    out.push({ process, mig: mig ?? null });
  }
  return out;
}
