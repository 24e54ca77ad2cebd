// A MIG device seen as a device: the parent's sample with the instance's UUID, memory and processes, so
// that the guard, the ledger and the metrics account a MIG target on its own slice of the board. Pure.
import type { NvmlReason } from './errors';
import type { DeviceSample, MigInstanceSample, Snapshot } from './types';

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
