// vramguard/testing: drive vramguard's mock NVML (a fake libnvidia-ml.so.1 shipped with the package)
// from tests, so GPU-less CI runs the real native path. Write a scenario, point vramguard at the mock,
// and change GPU state live through the control file while samplers run.
import { appendFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { MOCK_ERAS, type MockEra, mockLibraryPath, scenarioEra } from '../mock-library';

export { MOCK_ERAS, type MockEra, mockLibraryPath, scenarioEra };

export type MockReturn = string | number;
export type MockProcessType = 'compute' | 'graphics' | 'mps' | 'compute+graphics';

export interface MockProcess {
  pid: number;
  /** null: NVML reports "not available" for this process. */
  usedBytes?: number | null;
  type?: MockProcessType;
  gpuInstanceId?: number;
  computeInstanceId?: number;
  smUtilPercent?: number;
  memUtilPercent?: number;
  encUtilPercent?: number;
  decUtilPercent?: number;
  /** Drop the process once no live process has this pid, as the driver frees a dead process's memory. */
  followPid?: boolean;
  /** What nvmlSystemGetProcessName reports (default: the live process's command). */
  name?: string | null;
}

/** One MIG device (compute instance); its processes are the device's with its gpuInstanceId/computeInstanceId. */
export interface MockMigInstance {
  /** "MIG-…"; default derived from the device index and the ids. */
  uuid?: string;
  name?: string;
  gpuInstanceId: number;
  computeInstanceId?: number;
  memory: { total: number; reserved?: number; otherUsed?: number };
}

export interface MockDevice {
  name?: string;
  uuid?: string;
  pciBusId?: string;
  pciDeviceId?: number;
  memory: { total: number; reserved?: number; otherUsed?: number };
  utilization?: { gpuPercent?: number; memoryPercent?: number } | null;
  temperatureCelsius?: number | null;
  power?: { usageMilliwatts?: number; limitMilliwatts?: number } | null;
  clocks?: { smMhz?: number | null; memoryMhz?: number | null; graphicsMhz?: number | null; videoMhz?: number | null } | null;
  maxClocks?: { graphicsMhz?: number | null; smMhz?: number | null; memoryMhz?: number | null; videoMhz?: number | null } | null;
  minorNumber?: number | null;
  /** null (the default): no fan, as on datacenter GPUs. */
  fanSpeedPercent?: number | null;
  performanceState?: number | null;
  computeMode?: number | null;
  persistenceMode?: boolean | null;
  displayActive?: boolean | null;
  displayMode?: boolean | null;
  encoderUtilPercent?: number | null;
  decoderUtilPercent?: number | null;
  bar1Memory?: { total?: number; used?: number } | null;
  cudaComputeCapability?: { major?: number; minor?: number } | null;
  architecture?: number | null;
  migMode?: boolean | null;
  /** MIG devices by index (null: no compute instance at that index), handed out while migMode is true. */
  migInstances?: Array<MockMigInstance | null>;
  lost?: boolean;
  /** While lost, nvmlDeviceGetHandleByIndex_v2 fails with GPU_IS_LOST too. */
  handleLost?: boolean;
  /** Utilization answers carry the junk real drivers return (pid 0, SM above 100%, future timestamps). */
  processUtilizationJunk?: boolean;
  processes?: MockProcess[];
}

export interface MockErrorInjection {
  /** An NVML function name, e.g. 'nvmlDeviceGetPowerUsage', or '*' for every function. */
  function: string;
  /** Device index; all devices when absent. */
  device?: number;
  /** NVML return name ('NOT_SUPPORTED', 'GPU_IS_LOST', ...) or number. */
  return: MockReturn;
  /** Fail this many calls, then succeed again; unlimited when absent. */
  count?: number;
  /** Each matching call fails with this probability (0-1; draws seeded by the scenario's errorSeed). */
  probability?: number;
}

export type MockOp =
  | ({ op: 'setProcess'; device: number } & MockProcess)
  | { op: 'removeProcess'; device?: number; pid: number }
  | ({ op: 'setDevice'; device: number } & Partial<Omit<MockDevice, 'processes' | 'memory'>> & {
        memory?: Partial<MockDevice['memory']>;
      })
  | { op: 'loseDevice'; device: number }
  | { op: 'recoverDevice'; device: number }
  | ({ op: 'injectError' } & MockErrorInjection)
  | { op: 'clearErrors'; function?: string; device?: number }
  | { op: 'writeStats'; path: string };

export interface MockScenario {
  driverVersion?: string;
  nvmlVersion?: string;
  cudaDriverVersion?: number;
  era?: MockEra;
  /** false: nvmlSystemGetCudaDriverVersion_v2 fails with LIBRARY_NOT_FOUND (no libcuda mounted). */
  libcudaPresent?: boolean;
  /** Seeds the draws of error rules that have a probability. */
  errorSeed?: number;
  /** The caller lacks privileges: MIG-enabled devices refuse memory and process queries (NO_PERMISSION). */
  unprivileged?: boolean;
  controlFile?: string;
  processUtilizationPeriodMs?: number;
  devices: MockDevice[];
  errors?: MockErrorInjection[];
  timeline?: Array<{ atMs: number; ops: MockOp[] }>;
}

/** Warnings the loaded mock library has collected (bad control-file lines, refused ops), oldest first. */
export { mockWarnings } from '../nvml';

/** Appends ops to a mock's control file: each line is applied by the mock on its next device call. */
export class MockControl {
  constructor(readonly controlPath: string) {}

  /** Appends ops (one write, so concurrent writers never interleave within a line). */
  apply(...ops: MockOp[]): void {
    appendFileSync(this.controlPath, ops.map((op) => `${JSON.stringify(op)}\n`).join(''));
  }

  setProcess(device: number, process: MockProcess): void {
    this.apply({ op: 'setProcess', device, ...process });
  }

  removeProcess(pid: number, device?: number): void {
    this.apply(device === undefined ? { op: 'removeProcess', pid } : { op: 'removeProcess', device, pid });
  }

  setDevice(device: number, change: Omit<Extract<MockOp, { op: 'setDevice' }>, 'op' | 'device'>): void {
    this.apply({ op: 'setDevice', device, ...change });
  }

  loseDevice(device: number): void {
    this.apply({ op: 'loseDevice', device });
  }

  recoverDevice(device: number): void {
    this.apply({ op: 'recoverDevice', device });
  }

  injectError(injection: MockErrorInjection): void {
    this.apply({ op: 'injectError', ...injection });
  }

  clearErrors(filter: { function?: string; device?: number } = {}): void {
    this.apply({ op: 'clearErrors', ...filter });
  }

  /** Asks the mock to write its call counts (per function and per calling thread) to `path`. */
  requestStats(path: string): void {
    rmSync(path, { force: true });
    this.apply({ op: 'writeStats', path });
  }
}

export interface MockStats {
  calls: Record<string, number>;
  callsByThread: Record<string, Record<string, number>>;
}

/** Reads a stats file written after requestStats(); undefined until the mock has written it. */
export function readMockStats(path: string): MockStats | undefined {
  if (!existsSync(path)) return undefined;
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as MockStats;
  } catch {
    return undefined; // still being written
  }
}

export interface MockNvml {
  libraryPath: string;
  scenarioPath: string;
  controlPath: string;
  /** The environment that points vramguard (and child processes) at this mock. */
  env: { VRAMGUARD_NVML_LIBRARY: string; VRAMGUARD_MOCK_SCENARIO: string; VRAMGUARD_MOCK_CONTROL: string };
  control: MockControl;
  /** Sets `env` on this process (the mock reads it when NVML is initialized). */
  activate(): void;
  /** Removes the scenario's folder and, if activate() was called, restores the environment. */
  cleanup(): void;
}

/**
 * Writes `scenario` to a fresh temporary folder and returns what a test needs to run vramguard on it.
 * `dir` puts it elsewhere. The library is the one for the scenario's era (`legacy`: era '418').
 */
export function createMockNvml(scenario: MockScenario, options: { dir?: string; legacy?: boolean } = {}): MockNvml {
  const dir = options.dir ?? mkdtempSync(join(tmpdir(), 'vramguard-mock-'));
  const scenarioPath = join(dir, 'scenario.json');
  const controlPath = join(dir, 'control.ndjson');
  writeFileSync(scenarioPath, `${JSON.stringify(scenario, null, 2)}\n`);
  writeFileSync(controlPath, '');
  const env = {
    VRAMGUARD_NVML_LIBRARY: mockLibraryPath({ era: scenario.era, legacy: options.legacy }),
    VRAMGUARD_MOCK_SCENARIO: scenarioPath,
    VRAMGUARD_MOCK_CONTROL: controlPath,
  };
  let saved: Record<string, string | undefined> | undefined;
  return {
    libraryPath: env.VRAMGUARD_NVML_LIBRARY,
    scenarioPath,
    controlPath,
    env,
    control: new MockControl(controlPath),
    activate() {
      saved ??= Object.fromEntries(Object.keys(env).map((k) => [k, process.env[k]]));
      Object.assign(process.env, env);
    },
    cleanup() {
      if (saved) {
        for (const [key, value] of Object.entries(saved)) {
          if (value === undefined) delete process.env[key];
          else process.env[key] = value;
        }
        saved = undefined;
      }
      if (!options.dir) rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A plausible device for scenarios: `gib` of memory, named like an H100 by default. */
export function mockDevice(index: number, gib = 80, extra: Partial<MockDevice> = {}): MockDevice {
  return {
    name: 'NVIDIA H100 80GB HBM3',
    uuid: `GPU-${index.toString(16).padStart(8, '0')}-5d1e-4c1b-9a6f-0000000000${index.toString().padStart(2, '0')}`,
    pciBusId: `00000000:${(0x18 + index * 0x10).toString(16).toUpperCase().padStart(2, '0')}:00.0`,
    memory: { total: gib * 2 ** 30, reserved: 512 * 2 ** 20, otherUsed: 0 },
    utilization: { gpuPercent: 0, memoryPercent: 0 },
    temperatureCelsius: 35,
    power: { usageMilliwatts: 70_000, limitMilliwatts: 700_000 },
    clocks: { smMhz: 1980, memoryMhz: 2619 },
    processes: [],
    ...extra,
  };
}

export { FakeClock, FakeMonitor, flushMicrotasks } from './fakes';
export type { FakeDeviceState } from './fakes';
export type { FakeMigInstanceState, FakeMigState } from './fake-mig';
