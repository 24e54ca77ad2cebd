// Device selectors, resolved in one place for the Sampler, the guard and the CLI: an index, a UUID
// (GPU-..., MIG-...) or a PCI bus id in its short or full form (02:00.0, 0000:02:00.0, 00000000:02:00.0).
import { InvalidOptionError, UnknownMigDeviceError } from './errors';

export type DeviceSelector = number | string;

/** What a selector is matched against: one identity read at start-up, never while sampling. */
export interface DeviceIdentity {
  index: number;
  uuid: string | null;
  pciBusId: string | null;
  /** A MIG-enabled GPU's MIG devices (MIG- selectors match these). */
  mig?: { instances: ReadonlyArray<{ uuid: string | null }> | null } | null;
}

/** A resolved selector: the GPU's index, and the MIG device on it when the selector was a MIG- UUID. */
export interface DeviceTarget {
  index: number;
  migUuid: string | null;
}

/** True for a MIG device's UUID ("MIG-…"). */
export function isMigUuid(selector: DeviceSelector): selector is string {
  return typeof selector === 'string' && /^mig-/i.test(selector.trim());
}

const PCI_BUS_ID = /^(?:([0-9a-f]{1,8}):)?([0-9a-f]{1,2}):([0-9a-f]{1,2})\.([0-7])$/i;

/** True for a well-formed selector: a non-negative integer, or a non-empty string. */
export function isDeviceSelector(value: unknown): value is DeviceSelector {
  return typeof value === 'string' ? value.trim().length > 0 : Number.isInteger(value) && (value as number) >= 0;
}

/** The index a selector names directly (7 or "7"), or null when it needs an identity read. */
export function selectorIndex(selector: DeviceSelector): number | null {
  if (typeof selector === 'number') return selector;
  return /^\d+$/.test(selector.trim()) ? Number(selector.trim()) : null;
}

/** "index 0" or "indexes 0-3": the valid range, for messages. */
export function indexRange(deviceCount: number): string {
  if (deviceCount <= 0) return 'no devices';
  return deviceCount === 1 ? 'index 0' : `indexes 0-${deviceCount - 1}`;
}

/** A PCI bus id as domain:bus:device:function numbers, or null when it is not one. */
function normalizePciBusId(id: string): string | null {
  const match = PCI_BUS_ID.exec(id.trim());
  if (!match) return null;
  const [, domain = '0', bus = '', device = '', fn = ''] = match;
  return [domain, bus, device, fn].map((part) => parseInt(part, 16)).join(':');
}

/** "00000000:18:00.0" matches "0000:18:00.0" and "18:00.0" (domain optional, case-insensitive). */
export function samePciBusId(a: string, b: string): boolean {
  const left = normalizePciBusId(a);
  return left !== null && left === normalizePciBusId(b);
}

/** The device a UUID or PCI bus id names, or undefined. */
export function findDevice<T extends DeviceIdentity>(selector: string, devices: readonly T[]): T | undefined {
  const wanted = selector.trim().toLowerCase();
  return devices.find((d) => d.uuid?.toLowerCase() === wanted || (d.pciBusId !== null && samePciBusId(d.pciBusId, wanted)));
}

/**
 * Resolves one selector to a GPU and, for a MIG- UUID, the MIG device on it. Throws UnknownMigDeviceError
 * naming a MIG- UUID no MIG-enabled GPU has (and listing those there are), else as resolveDeviceSelector.
 */
export function resolveDeviceTarget(
  selector: DeviceSelector,
  machine: { deviceCount: number | null; identities: () => readonly DeviceIdentity[] },
  option: string,
): DeviceTarget {
  if (!isMigUuid(selector)) return { index: resolveDeviceSelector(selector, machine, option), migUuid: null };
  const wanted = selector.trim().toLowerCase();
  const devices = machine.identities();
  const known: string[] = [];
  for (const device of devices) {
    for (const instance of device.mig?.instances ?? []) {
      if (instance.uuid?.toLowerCase() === wanted) return { index: device.index, migUuid: instance.uuid };
      if (instance.uuid) known.push(`${instance.uuid} on GPU ${device.index}`);
    }
  }
  throw new UnknownMigDeviceError(option, selector.trim(), known.length > 0 ? `this machine has ${known.join('; ')}` : 'no GPU here has MIG devices');
}

/**
 * Resolves one selector to a device index. `deviceCount` checks indexes; `identities` (called only
 * for UUIDs and PCI bus ids) maps the others. Throws InvalidOptionError naming `option`, the bad value
 * and the valid range.
 */
export function resolveDeviceSelector(
  selector: DeviceSelector,
  machine: { deviceCount: number | null; identities: () => readonly DeviceIdentity[] },
  option: string,
): number {
  const index = selectorIndex(selector);
  if (index !== null) {
    if (machine.deviceCount !== null && index >= machine.deviceCount) {
      throw new InvalidOptionError(option, `no device ${index} (this machine has ${indexRange(machine.deviceCount)})`);
    }
    return index;
  }
  const text = String(selector);
  const devices = machine.identities();
  const found = findDevice(text, devices);
  if (!found) {
    const kind = normalizePciBusId(text) === null ? 'UUID' : 'PCI bus id';
    const known = devices.map((d) => `${d.index} ${d.uuid ?? '?'}${d.pciBusId ? ` ${d.pciBusId}` : ''}`).join('; ');
    throw new InvalidOptionError(option, `no device with ${kind} ${text} (this machine has ${known || 'no devices'})`);
  }
  return found.index;
}
