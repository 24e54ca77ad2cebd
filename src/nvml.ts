// The typed boundary to the native addon: the only module that loads it. Everything else in
// vramguard talks to NVML through these declarations.
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';

import { NvmlError, NvmlUnavailableError, type NvmlReason } from './errors';
import type { Snapshot, SystemInfo } from './types';

interface NativeFailure extends NvmlReason {
  ok: false;
  reason: string;
}

interface NativeProbe {
  ok: true;
  libraryPath: string;
  isMock: boolean;
  system: SystemInfo;
  symbols: Record<string, boolean>;
}

interface NativeStart extends NativeProbe {
  devices: number[];
}

export interface NativeEvent {
  type: 'watermark' | 'device-lost' | 'device-recovered' | 'sample';
  device: number;
  sequence: number;
  timestamp: number;
  id?: number;
  valueBytes?: number;
  thresholdBytes?: number;
  above?: boolean;
  reason?: NvmlReason;
}

export interface NativeWatermark {
  id: number;
  device: number;
  thresholdBytes: number;
  pids?: number[];
}

export interface NativeSampler {
  start(): NativeStart | NativeFailure;
  stop(): void;
  latest(knownSequence?: number): Snapshot | null | undefined;
  publishedSequence(): number;
  setWatermarks(watermarks: NativeWatermark[]): void;
  requestSample(): void;
  setKeepAlive(keepAlive: boolean): void;
}

interface NativeBinding {
  napiVersion: number;
  probe(libraryPath?: string): NativeProbe | NativeFailure;
  readOnce(libraryPath?: string, devices?: number[]): { ok: true; system: SystemInfo; snapshot: Snapshot } | NativeFailure;
  Sampler: new (
    options: { intervalMs: number; devices?: number[]; libraryPath?: string },
    onEvents: (events: NativeEvent[]) => void,
  ) => NativeSampler;
  /**
   * The mock NVML's warnings (its vramguardMockWarnings(): bad control-file lines, refused ops), one a
   * line, oldest first; '' when there are none or the library is not the mock. Absent from addons built
   * before the loader read them.
   */
  mockWarnings?(): string;
}

function packageRoot(): string {
  let dir = __dirname;
  while (!existsSync(join(dir, 'package.json')) || !existsSync(join(dir, 'binding.gyp'))) {
    const parent = dirname(dir);
    if (parent === dir) throw new Error(`vramguard: cannot find the package root above ${__dirname}`);
    dir = parent;
  }
  return dir;
}

let loaded: { binding: NativeBinding; path: string } | undefined;

/**
 * Loads the addon: VRAMGUARD_BINDING (a .node file, e.g. the cmake-js or sanitizer build) if set,
 * else node-gyp-build's choice (prebuilds/ first, then build/Release).
 */
function load(): { binding: NativeBinding; path: string } {
  if (loaded) return loaded;
  const explicit = process.env.VRAMGUARD_BINDING;
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const nodeGypBuild = require('node-gyp-build') as { (dir: string): unknown; resolve(dir: string): string };
  const path = explicit && explicit.length > 0 ? explicit : nodeGypBuild.resolve(packageRoot());
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  loaded = { binding: require(path) as NativeBinding, path };
  return loaded;
}

/** The native binding (loaded on first use). */
export function binding(): NativeBinding {
  return load().binding;
}

/** Path of the addon file that was loaded. */
export function bindingPath(): string {
  return load().path;
}

function failure(result: NativeFailure): NvmlUnavailableError {
  return new NvmlUnavailableError(
    { code: result.code, returnValue: result.returnValue, function: result.function },
    result.reason,
  );
}

/** What NVML offers here, as found by loading it. */
export interface NvmlProbe {
  libraryPath: string;
  /** True when the library is vramguard's mock. */
  isMock: boolean;
  system: SystemInfo;
  /** Each NVML function vramguard can use, and whether this library exports it. */
  symbols: Record<string, boolean>;
  /** The symbols summarized: which optional capabilities this driver has. */
  capabilities: NvmlCapabilities;
}

export interface NvmlCapabilities {
  memoryInfoV2: boolean;
  processListV3: boolean;
  processListV2: boolean;
  graphicsProcesses: boolean;
  mpsProcesses: boolean;
  processUtilization: boolean;
  pciInfo: boolean;
  power: boolean;
  temperature: boolean;
  clocks: boolean;
  utilization: boolean;
}

export function capabilitiesFrom(symbols: Record<string, boolean>): NvmlCapabilities {
  const has = (name: string) => symbols[name] === true;
  return {
    memoryInfoV2: has('nvmlDeviceGetMemoryInfo_v2'),
    processListV3: has('nvmlDeviceGetComputeRunningProcesses_v3'),
    processListV2: has('nvmlDeviceGetComputeRunningProcesses_v2'),
    graphicsProcesses: ['', '_v2', '_v3'].some((v) => has(`nvmlDeviceGetGraphicsRunningProcesses${v}`)),
    mpsProcesses: ['', '_v2', '_v3'].some((v) => has(`nvmlDeviceGetMPSComputeRunningProcesses${v}`)),
    processUtilization: has('nvmlDeviceGetProcessUtilization'),
    pciInfo: has('nvmlDeviceGetPciInfo_v3'),
    power: has('nvmlDeviceGetPowerUsage'),
    temperature: has('nvmlDeviceGetTemperature'),
    clocks: has('nvmlDeviceGetClockInfo'),
    utilization: has('nvmlDeviceGetUtilizationRates'),
  };
}

export interface NvmlOptions {
  /** Path of libnvidia-ml.so.1; default: VRAMGUARD_NVML_LIBRARY, else the system's. */
  libraryPath?: string;
}

const probes = new Map<string, NativeProbe | NativeFailure>();

function cachedProbe(options: NvmlOptions = {}): NativeProbe | NativeFailure {
  const key = options.libraryPath ?? process.env.VRAMGUARD_NVML_LIBRARY ?? '';
  let result = probes.get(key);
  if (!result) {
    result = binding().probe(options.libraryPath);
    probes.set(key, result);
  }
  return result;
}

/** True when NVML loads and initializes here. Probed once per library path, then remembered. */
export function available(options?: NvmlOptions): boolean {
  return cachedProbe(options).ok;
}

/** Why NVML is unavailable, in one line; null when it is available. */
export function unavailableReason(options?: NvmlOptions): string | null {
  const result = cachedProbe(options);
  return result.ok ? null : result.reason;
}

/** Loads NVML and reports versions and capabilities. Throws NvmlUnavailableError when it cannot. */
export function probe(options: NvmlOptions = {}): NvmlProbe {
  const result = binding().probe(options.libraryPath);
  if (!result.ok) throw failure(result);
  return {
    libraryPath: result.libraryPath,
    isMock: result.isMock,
    system: result.system,
    symbols: result.symbols,
    capabilities: capabilitiesFrom(result.symbols),
  };
}

/**
 * The mock NVML's current warnings (the latest ones it kept, oldest first): [] for a real NVML or a mock
 * with nothing to say; null when this addon cannot read them.
 */
export function mockWarnings(): string[] | null {
  const read = binding().mockWarnings;
  if (read === undefined) return null;
  return read.call(binding()).split('\n').filter((line) => line.length > 0);
}

/**
 * One synchronous reading of the devices (all by default), for one-off use such as `vramguard info`.
 * Long-running readers use a Sampler, which reads on its own thread.
 */
export function readOnce(options: NvmlOptions & { devices?: number[] } = {}): { system: SystemInfo; snapshot: Snapshot } {
  const result = binding().readOnce(options.libraryPath, options.devices);
  if (!result.ok) {
    if (result.function === 'nvmlDeviceGetHandleByIndex_v2') {
      throw new NvmlError(result, result.reason);
    }
    throw failure(result);
  }
  return { system: result.system, snapshot: result.snapshot };
}

/** @internal Turns a native start failure into the typed error. */
export function startFailure(result: NativeFailure): NvmlError {
  return result.function === 'nvmlDeviceGetHandleByIndex_v2' ? new NvmlError(result, result.reason) : failure(result);
}

export type { NativeFailure, NativeStart };
