// Start-up: the guard's device and monitor (a fake one given, a Sampler of its own, or none: the
// ledger), and its limits. One identity read at most; nothing here runs after construction.
import { InvalidOptionError } from '../errors';
import { isDeviceSelector, resolveDeviceTarget, selectorIndex, type DeviceSelector } from '../devices';
import { findMigInstance } from '../mig';
import * as nvml from '../nvml';
import { Sampler } from '../sampler';
import { parseQuotaSize, type GuardOptions } from './options';
import type { GuardMonitor, Limits } from './types';

export interface MonitorSetup {
  monitor: GuardMonitor | null;
  /** The guard started the monitor (a Sampler) and closes it. */
  ownsMonitor: boolean;
  deviceIndex: number;
  /** The MIG device guarded (a MIG- UUID given as device): its memory and processes count, not the board's. */
  migUuid: string | null;
  /** The device's total memory, when known (percent quotas need it). */
  totalBytes: number | null;
  /** Why NVML is unavailable (ledger mode); null otherwise. */
  nvmlReason: string | null;
}

/** Finds the guard's device and opens its monitor. */
export function openMonitor(options: { device?: unknown; monitor?: GuardMonitor; libraryPath?: string; intervalMs: number }): MonitorSetup {
  const device = options.device ?? 0;
  if (!isDeviceSelector(device)) {
    throw new InvalidOptionError('device', `expected a device index or UUID, got ${JSON.stringify(device)}`);
  }
  if (options.monitor) {
    const devices = options.monitor.latest()?.devices ?? null;
    const { index, migUuid } = resolveDeviceTarget(
      device,
      {
        deviceCount: devices === null ? null : devices.length,
        identities: () => {
          if (devices === null) throw new InvalidOptionError('device', `cannot find ${String(device)}: the monitor has no sample yet`);
          return devices;
        },
      },
      'device',
    );
    const known = devices?.find((d) => d.index === index);
    const totalBytes = (migUuid && known ? findMigInstance(known, migUuid)?.memoryTotalBytes : known?.memoryTotalBytes) ?? null;
    return { monitor: options.monitor, ownsMonitor: false, deviceIndex: index, migUuid, totalBytes, nvmlReason: null };
  }
  if (nvml.available({ libraryPath: options.libraryPath })) {
    // Start-up only: one read to check the device and learn its total.
    const { snapshot } = nvml.readOnce({ libraryPath: options.libraryPath });
    const { index, migUuid } = resolveDeviceTarget(device, { deviceCount: snapshot.devices.length, identities: () => snapshot.devices }, 'device');
    const found = snapshot.devices.find((d) => d.index === index)!;
    // A MIG target: the sampler shows that MIG device in its GPU's place.
    const monitor = new Sampler({ interval: options.intervalMs, devices: [migUuid ?? index], libraryPath: options.libraryPath }).start();
    const totalBytes = migUuid ? (findMigInstance(found, migUuid)?.memoryTotalBytes ?? null) : found.memoryTotalBytes;
    return { monitor, ownsMonitor: true, deviceIndex: index, migUuid, totalBytes, nvmlReason: null };
  }
  const nvmlReason = nvml.unavailableReason({ libraryPath: options.libraryPath });
  const index = selectorIndex(device as DeviceSelector);
  if (index === null) {
    throw new InvalidOptionError('device', `cannot find GPU ${String(device)}: NVML is unavailable (${nvmlReason})`);
  }
  return { monitor: null, ownsMonitor: false, deviceIndex: index, migUuid: null, totalBytes: null, nvmlReason };
}

/** How a quota value was given, for messages: "30GiB", or 90% with what it came to. */
function given(value: unknown, bytes: number): string {
  if (typeof value === 'string' && value.trim().endsWith('%')) return `${JSON.stringify(value)} (${bytes} bytes)`;
  return JSON.stringify(value);
}

/** Soft and hard limits and the relief target, from quota and hysteresis. */
export function resolveLimits(options: Pick<GuardOptions, 'quota' | 'hysteresis'>, totalBytes: number | null, nvmlReason: string | null): Limits {
  const quota = options.quota ?? { soft: '85%', hard: '95%' };
  if (typeof quota !== 'object' || quota === null) {
    throw new InvalidOptionError('quota', 'expected { soft?, hard } with bytes, sizes like "20GiB", or percentages like "90%"');
  }
  if (quota.hard === undefined) {
    throw new InvalidOptionError('quota.hard', 'missing: quota needs hard, the limit no admission passes (soft is optional, default 90% of hard)');
  }
  const hardBytes = parseQuotaSize(quota.hard, 'quota.hard', totalBytes, nvmlReason);
  const softBytes = quota.soft === undefined ? Math.floor(hardBytes * 0.9) : parseQuotaSize(quota.soft, 'quota.soft', totalBytes, nvmlReason);
  if (softBytes > hardBytes) {
    throw new InvalidOptionError('quota.soft', `${given(quota.soft, softBytes)} is above quota.hard (${given(quota.hard, hardBytes)})`);
  }
  if (totalBytes !== null && hardBytes > totalBytes) {
    throw new InvalidOptionError('quota.hard', `(${hardBytes} bytes) is above the device's total (${totalBytes} bytes)`);
  }
  const hysteresis =
    options.hysteresis === undefined ? Math.floor(softBytes * 0.05) : parseQuotaSize(options.hysteresis, 'hysteresis', totalBytes, nvmlReason);
  if (hysteresis >= softBytes) {
    throw new InvalidOptionError('hysteresis', `(${hysteresis} bytes) must be below quota.soft (${softBytes} bytes)`);
  }
  return { softBytes, hardBytes, targetBytes: softBytes - hysteresis };
}
