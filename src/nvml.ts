// The typed boundary to the native addon: the only module that loads it. Everything else in
// vramguard talks to NVML through these declarations.
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';

import { NvmlError, NvmlUnavailableError, type NvmlReason } from './errors';
import { type PackedLayout, SnapshotDecoder } from './native-snapshot';
import type { Snapshot, SystemInfo } from './types';

/**
 * Why the addon could not read: `kind` says which error it is (the NVML function is for the message
 * only). unavailable: NVML cannot be loaded, initialized or count its devices; bad-device: a requested
 * device index does not exist.
 */
interface NativeFailure extends NvmlReason {
  ok: false;
  kind: 'unavailable' | 'bad-device';
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
  /** The MIG device of `device` with this UUID: its used bytes and processes. */
  migUuid?: string;
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

/** A snapshot as the addon packs it (native/js_snapshot.h); SnapshotDecoder builds the objects. */
interface PackedSnapshot {
  numbers: Float64Array;
  strings: string[];
}

/** The addon's own sampler: latest() writes into the caller's arrays (see NativeSampler for the JS face). */
interface RawNativeSampler extends Omit<NativeSampler, 'latest'> {
  /** Slots written (minus the slots needed when numbers is too small), undefined: still knownSequence, null: no pass yet. */
  latest(knownSequence: number, numbers: Float64Array, strings: string[]): number | null | undefined;
}

interface NativeBinding {
  napiVersion: number;
  snapshotLayout: PackedLayout;
  returnCodeName(returnValue: number): string;
  mockWarnings(): string[];
  probe(libraryPath?: string): NativeProbe | NativeFailure;
  readOnce(libraryPath?: string, devices?: number[]): { ok: true; system: SystemInfo; snapshot: PackedSnapshot } | NativeFailure;
  /** flock(fd, LOCK_EX | LOCK_NB): false when another holds it (native/file_lock.cc). */
  tryLockFile(fd: number): boolean;
  /** flock(fd, LOCK_UN). */
  unlockFile(fd: number): void;
  Sampler: new (
    options: { intervalMs: number; devices?: number[]; libraryPath?: string },
    onEvents: (events: NativeEvent[]) => void,
  ) => RawNativeSampler;
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

/**
 * Creates a native sampler. Its callback never throws into native code: an error thrown by a listener
 * is rethrown on the next tick, where Node reports it as an uncaught exception, as from any emitter
 * (thrown inside the thread-safe function's call, Node would only print a deprecation warning).
 */
export function createNativeSampler(
  options: { intervalMs: number; devices?: number[]; libraryPath?: string },
  onEvents: (events: NativeEvent[]) => void,
): NativeSampler {
  const raw = new (binding().Sampler)(options, (events) => {
    try {
      onEvents(events);
    } catch (error) {
      process.nextTick(() => {
        throw error;
      });
    }
  });
  const decoder = newDecoder();
  return {
    start: () => raw.start(),
    stop: () => raw.stop(),
    publishedSequence: () => raw.publishedSequence(),
    setWatermarks: (watermarks) => raw.setWatermarks(watermarks),
    requestSample: () => raw.requestSample(),
    setKeepAlive: (keepAlive) => raw.setKeepAlive(keepAlive),
    latest(knownSequence = -1) {
      for (;;) {
        const slots = raw.latest(knownSequence, decoder.numbers, decoder.strings);
        if (slots === null || slots === undefined) return slots;
        if (slots >= 0) return decoder.decode();
        decoder.grow(-slots);
      }
    },
  };
}

function newDecoder(): SnapshotDecoder {
  const native = binding();
  return new SnapshotDecoder(native.snapshotLayout, (returnValue) => native.returnCodeName(returnValue));
}

/** The typed error for a native failure, chosen by its kind. */
function failure(result: NativeFailure): NvmlError {
  const reason: NvmlReason = { code: result.code, returnValue: result.returnValue, function: result.function };
  switch (result.kind) {
    case 'bad-device':
      return new NvmlError(reason, result.reason);
    case 'unavailable':
      return new NvmlUnavailableError(reason, result.reason);
    default:
      throw new Error(`vramguard: the native addon reported an unknown failure kind ${JSON.stringify(result.kind)} (${result.reason})`);
  }
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

/** How many devices NVML reports now (one probe, for start-up checks); null when unknown or unavailable. */
export function deviceCount(options: NvmlOptions = {}): number | null {
  const result = binding().probe(options.libraryPath);
  return result.ok ? (result.system.deviceCount ?? null) : null;
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
 * One synchronous reading of the devices (all by default), for one-off use such as `vramguard info`.
 * Long-running readers use a Sampler, which reads on its own thread.
 */
export function readOnce(options: NvmlOptions & { devices?: number[] } = {}): { system: SystemInfo; snapshot: Snapshot } {
  const result = binding().readOnce(options.libraryPath, options.devices);
  if (!result.ok) throw failure(result);
  return { system: result.system, snapshot: newDecoder().decode(result.snapshot.numbers, result.snapshot.strings) };
}

/** @internal Turns a native start failure into the typed error. */
export function startFailure(result: NativeFailure): NvmlError {
  return failure(result);
}

export type { NativeFailure, NativeStart };

/**
 * The mock NVML library's recent warnings (bad control-file lines, refused ops), oldest first; empty when
 * NVML is not loaded in this process or is not vramguard's mock.
 */
export function mockWarnings(): string[] {
  return binding().mockWarnings();
}
