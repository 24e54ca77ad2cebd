// What every command shares: the common options, exit codes, one-line errors, opening NVML (real,
// --nvml-library or --mock) and resolving --device, signals, and the stream of sampling passes.
import { accessSync, constants, statSync } from 'node:fs';
import { resolve } from 'node:path';

import { ClosedError, InvalidOptionError, NvmlError, NvmlUnavailableError } from '../errors';
import * as nvml from '../nvml';
import type { Sampler } from '../sampler';
import { type DeviceIdentity, indexRange, isMigUuid, resolveDeviceTarget, selectorIndex } from '../devices';
import { mockLibraryPath, scenarioEra } from '../mock-library';
import { onSignals } from '../signals';
import type { Snapshot } from '../types';
import { parseDuration } from '../units';

/** Exit codes, documented in the README ("Command line"). */
export const EXIT_OK = 0;
/** A failure while running (e.g. the listen address is taken). */
export const EXIT_FAILURE = 1;
/** No NVIDIA driver / NVML library, NVML failed to initialize, or no GPU. */
export const EXIT_UNAVAILABLE = 2;
/** Bad command line (EX_USAGE in sysexits.h). */
export const EXIT_USAGE = 64;

/** A failure with its exit code; the CLI prints `vramguard <command>: <message>` on one line. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: number,
  ) {
    super(message);
    this.name = 'CliError';
  }
}

/** A bad flag or value; `flag` is named at the start of the message. */
export class UsageError extends CliError {
  constructor(
    readonly flag: string,
    message: string,
  ) {
    super(`${flag}: ${message}`, EXIT_USAGE);
    this.name = 'UsageError';
  }
}

/** NVML cannot be used here (exit 2). */
export class UnavailableError extends CliError {
  constructor(message: string) {
    super(message, EXIT_UNAVAILABLE);
    this.name = 'UnavailableError';
  }
}

/** Options every command takes. */
export interface CommonOptions {
  device?: string[];
  nvmlLibrary?: string;
  mock?: string;
}

export const MIN_INTERVAL_MS = 10;

/** Parses --interval: a duration ('500ms', '2s', or milliseconds), at least 10 ms. */
export function parseInterval(value: string): number {
  let ms: number;
  try {
    ms = parseDuration(value, '--interval');
  } catch {
    throw new UsageError('--interval', `cannot read ${JSON.stringify(value)} as a duration (e.g. 500ms, 1s, 2m)`);
  }
  if (!(ms >= MIN_INTERVAL_MS)) throw new UsageError('--interval', `must be at least ${MIN_INTERVAL_MS}ms, got ${JSON.stringify(value)}`);
  if (ms > 24 * 3_600_000) throw new UsageError('--interval', `must be at most 24h, got ${JSON.stringify(value)}`);
  return ms;
}

/** Parses a positive integer flag (--count). */
export function parsePositiveInteger(flag: string, value: string): number {
  if (!/^\s*\d+\s*$/.test(value) || Number(value) < 1 || !Number.isSafeInteger(Number(value))) {
    throw new UsageError(flag, `expected a positive integer, got ${JSON.stringify(value)}`);
  }
  return Number(value);
}

/** Device selectors from repeated and comma-separated --device values. */
export function collectDevices(value: string, previous: string[] | undefined): string[] {
  const items = value.split(',').map((s) => s.trim());
  if (items.some((s) => s.length === 0)) throw new UsageError('--device', `empty device in ${JSON.stringify(value)}`);
  return [...(previous ?? []), ...items];
}

/** Why `path` cannot be read as a file ('no such file or directory (ENOENT)', ...), or null. */
function unreadableFile(path: string): string | null {
  try {
    if (statSync(path).isDirectory()) return 'it is a directory';
    accessSync(path, constants.R_OK);
    return null;
  } catch (error) {
    const { code, message } = error as NodeJS.ErrnoException;
    // Node's message is "ENOENT: no such file or directory, stat '/x'": keep the reason, name the code.
    const reason = /^[A-Z]+: ([^,]+)/.exec(message)?.[1] ?? message;
    return code ? `${reason} (${code})` : reason;
  }
}

/** NVML opened for a command: what the library offers and the devices to read. */
export interface OpenedNvml {
  probe: nvml.NvmlProbe;
  /** Indexes to read, in the order given; undefined: all. */
  devices: number[] | undefined;
  /** Device count NVML reports. */
  deviceCount: number;
}

/**
 * Points vramguard at the right library (--mock: the bundled mock with the scenario; --nvml-library:
 * that file, like VRAMGUARD_NVML_LIBRARY), loads NVML once to check it works, and resolves --device.
 * Throws UnavailableError (exit 2) when NVML cannot be used or finds no GPU, UsageError for bad flags.
 */
export function openNvml(options: CommonOptions): OpenedNvml {
  if (options.mock !== undefined && options.nvmlLibrary !== undefined) {
    throw new UsageError('--mock', 'cannot be combined with --nvml-library (--mock uses the bundled mock library)');
  }
  if (options.mock !== undefined) {
    if (options.mock.length === 0) throw new UsageError('--mock', 'expected the path of a scenario file');
    const scenario = resolve(options.mock);
    const unreadable = unreadableFile(scenario);
    // A scenario that cannot be read is a bad scenario (exit 2, like one the mock rejects), not bad usage.
    if (unreadable) throw new UnavailableError(`scenario ${scenario}: cannot read it: ${unreadable}`);
    let library: string;
    try {
      library = mockLibraryPath({ era: scenarioEra(scenario) });
    } catch (error) {
      throw new UnavailableError(`--mock: ${(error as Error).message}`);
    }
    process.env.VRAMGUARD_NVML_LIBRARY = library;
    process.env.VRAMGUARD_MOCK_SCENARIO = scenario;
  } else if (options.nvmlLibrary !== undefined) {
    if (options.nvmlLibrary.length === 0) throw new UsageError('--nvml-library', 'expected a path');
    process.env.VRAMGUARD_NVML_LIBRARY = options.nvmlLibrary;
  }

  let probe: nvml.NvmlProbe;
  try {
    probe = nvml.probe();
  } catch (error) {
    if (error instanceof NvmlUnavailableError) throw new UnavailableError(error.message);
    throw error;
  }
  const deviceCount = probe.system.deviceCount ?? 0;
  if (deviceCount === 0) {
    const driver = probe.system.driverVersion ? ` (driver ${probe.system.driverVersion})` : '';
    throw new UnavailableError(`no GPU: NVML${driver} reports 0 devices`);
  }
  return { probe, devices: resolveDevices(options.device, deviceCount), deviceCount };
}

function resolveDevices(selectors: string[] | undefined, deviceCount: number): number[] | undefined {
  if (!selectors || selectors.length === 0) return undefined;
  // UUIDs and PCI bus ids: one identity read at start-up (never while sampling).
  let identities: DeviceIdentity[] | undefined;
  const machine = { deviceCount, identities: () => (identities ??= readIdentities()) };
  const indexes: number[] = [];
  for (const selector of selectors) {
    let index: number;
    try {
      // A MIG- UUID selects its GPU (whose MIG devices every command lists).
      index = resolveDeviceTarget(selector, machine, 'device').index;
    } catch (error) {
      if (!(error instanceof InvalidOptionError) || selectorIndex(selector) !== null) throw error;
      if (isMigUuid(selector)) throw new UsageError('--device', error.message.replace(/^[^:]*: /, ''));
      throw new UsageError(
        '--device',
        `no device with UUID or PCI bus id ${JSON.stringify(selector)} (this machine has ${indexRange(deviceCount)})`,
      );
    }
    if (!indexes.includes(index)) indexes.push(index);
  }
  return indexes;
}

function readIdentities(): DeviceIdentity[] {
  try {
    return nvml.readOnce().snapshot.devices.map((d) => ({ index: d.index, uuid: d.uuid, pciBusId: d.pciBusId, mig: d.mig }));
  } catch (error) {
    if (error instanceof NvmlUnavailableError) throw new UnavailableError(error.message);
    throw error;
  }
}

/** Turns errors from the library into CLI errors (exit codes), passing CliErrors through. */
export function toCliError(error: unknown): CliError {
  if (error instanceof CliError) return error;
  if (error instanceof NvmlUnavailableError) return new UnavailableError(error.message);
  if (error instanceof InvalidOptionError) return new UsageError(`--${error.option}`, error.message.replace(/^[^:]*: /, ''));
  if (error instanceof NvmlError) return new CliError(`NVML: ${error.message}`, EXIT_FAILURE);
  if (error instanceof Error) return new CliError(error.message, EXIT_FAILURE);
  return new CliError(String(error), EXIT_FAILURE);
}

/**
 * Calls `stop` once on SIGINT or SIGTERM (and SIGHUP), so a command can close its sampler and exit 0.
 * Returns a function that removes the handlers.
 */
export function onStopSignal(stop: (signal: NodeJS.Signals) => void): () => void {
  return onSignals(['SIGINT', 'SIGTERM', 'SIGHUP'], (signal, count) => {
    if (count === 1) stop(signal);
  });
}

/**
 * Every sampling pass once, in order, until the sampler is closed. A consumer slower than the
 * interval skips passes (it always gets the newest), it never queues them. A pending next() keeps the
 * process alive, so a command that only streams samples runs until it closes the sampler.
 */
export async function* passes(sampler: Sampler): AsyncGenerator<Snapshot> {
  let last = -1;
  const first = sampler.latest();
  if (first) {
    last = first.sequence;
    yield first;
  }
  for (;;) {
    let snapshot: Snapshot;
    try {
      snapshot = await sampler.next();
    } catch (error) {
      if (error instanceof ClosedError) return;
      throw error;
    }
    if (snapshot.sequence <= last) continue;
    last = snapshot.sequence;
    yield snapshot;
  }
}

export { snakeCase } from '../metrics/naming';

export interface ListenAddress {
  host: string;
  port: number;
}

/** Parses --listen: `HOST:PORT`, `[IPv6]:PORT`, `:PORT` (every interface) or `PORT` (127.0.0.1). */
export function parseListen(value: string): ListenAddress {
  const bad = (why: string) => new UsageError('--listen', `${why}: ${JSON.stringify(value)} (expected HOST:PORT, e.g. 127.0.0.1:9400)`);
  let host: string;
  let port: string;
  const v6 = /^\[([0-9a-fA-F:.]+)\]:(\d+)$/.exec(value);
  if (v6) {
    host = v6[1]!;
    port = v6[2]!;
  } else if (/^\d+$/.test(value)) {
    host = '127.0.0.1';
    port = value;
  } else {
    const colon = value.lastIndexOf(':');
    if (colon < 0) throw bad('no port');
    host = value.slice(0, colon);
    port = value.slice(colon + 1);
    if (host.includes(':')) throw bad('write an IPv6 address in brackets');
    if (host === '') host = '0.0.0.0';
    if (!/^\d+$/.test(port)) throw bad('bad port');
  }
  const number = Number(port);
  if (!Number.isInteger(number) || number < 0 || number > 65535) throw bad('port out of range');
  return { host, port: number };
}

export function formatAddress({ host, port }: ListenAddress): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}
