// Every NVML error code on every function vramguard calls: the affected readings are null with the
// injected code, everything else still reads, lost codes mark only that GPU lost, version codes make
// the reader fall back, and nothing throws or crashes.
import { afterEach, describe, expect, it } from 'vitest';

import { NvmlUnavailableError } from '../../src/errors';
import * as nvml from '../../src/nvml';
import type { DeviceSample } from '../../src/types';
import { type MockNvml } from '../../src/testing';
import { twoGpuScenario, useMock, NOT_MIG_CAPABLE } from '../helpers';

const CODES: Record<string, number> = {
  UNINITIALIZED: 1, INVALID_ARGUMENT: 2, NOT_SUPPORTED: 3, NO_PERMISSION: 4, ALREADY_INITIALIZED: 5, NOT_FOUND: 6,
  INSUFFICIENT_SIZE: 7, INSUFFICIENT_POWER: 8, DRIVER_NOT_LOADED: 9, TIMEOUT: 10, IRQ_ISSUE: 11,
  LIBRARY_NOT_FOUND: 12, FUNCTION_NOT_FOUND: 13, CORRUPTED_INFOROM: 14, GPU_IS_LOST: 15, RESET_REQUIRED: 16,
  OPERATING_SYSTEM: 17, LIB_RM_VERSION_MISMATCH: 18, IN_USE: 19, MEMORY: 20, NO_DATA: 21,
  VGPU_ECC_NOT_SUPPORTED: 22, INSUFFICIENT_RESOURCES: 23, FREQ_NOT_SUPPORTED: 24, ARGUMENT_VERSION_MISMATCH: 25,
  DEPRECATED: 26, NOT_READY: 27, GPU_NOT_FOUND: 28, INVALID_STATE: 29, RESET_TYPE_NOT_SUPPORTED: 30, UNKNOWN: 999,
};
const LOST = new Set(['GPU_IS_LOST', 'GPU_NOT_FOUND']);
const VERSION = new Set(['FUNCTION_NOT_FOUND', 'ARGUMENT_VERSION_MISMATCH']);

/** For each device-level function: the fields its failure empties (device 0 only is injected). */
const DEVICE_FUNCTIONS: Record<string, string[]> = {
  nvmlDeviceGetUUID: ['uuid'],
  nvmlDeviceGetName: ['name'],
  nvmlDeviceGetPciInfo_v3: ['pciBusId', 'pciDeviceId'],
  nvmlDeviceGetUtilizationRates: ['gpuUtilizationRatio', 'memoryUtilizationRatio'],
  nvmlDeviceGetTemperature: ['temperatureCelsius'],
  nvmlDeviceGetPowerUsage: ['powerUsageWatts'],
  nvmlDeviceGetEnforcedPowerLimit: ['powerLimitWatts'],
  nvmlDeviceGetClockInfo: ['smClockHertz', 'memoryClockHertz'],
  // One versioned call reads all three lists on drivers 535.104.05 and later.
  nvmlDeviceGetRunningProcessDetailList: ['processes', 'graphicsProcesses', 'mpsProcesses'],
  nvmlDeviceGetProcessesUtilizationInfo: ['processUtilization'],
  nvmlDeviceGetMemoryInfo_v2: ['memoryReservedBytes'],
  nvmlDeviceGetHandleByIndex_v2: ['memoryUsedBytes', 'temperatureCelsius', 'processes'],
};
/** Functions only called as fallbacks: failing them alone changes nothing on a current driver. */
const UNUSED_ON_CURRENT_DRIVER = [
  'nvmlDeviceGetMemoryInfo',
  'nvmlDeviceGetComputeRunningProcesses_v3',
  'nvmlDeviceGetGraphicsRunningProcesses_v3',
  'nvmlDeviceGetMPSComputeRunningProcesses_v3',
  'nvmlDeviceGetProcessUtilization',
  'nvmlDeviceGetComputeRunningProcesses_v2',
  'nvmlDeviceGetComputeRunningProcesses',
  'nvmlDeviceGetGraphicsRunningProcesses_v2',
  'nvmlDeviceGetGraphicsRunningProcesses',
  'nvmlDeviceGetMPSComputeRunningProcesses_v2',
  'nvmlDeviceGetMPSComputeRunningProcesses',
  'nvmlSystemGetCudaDriverVersion',
];
const SYSTEM_FUNCTIONS: Record<string, string> = {
  nvmlSystemGetDriverVersion: 'driverVersion',
  nvmlSystemGetNVMLVersion: 'nvmlVersion',
  nvmlSystemGetCudaDriverVersion_v2: 'cudaDriverVersion',
};

let mock: MockNvml | undefined;
afterEach(() => mock?.cleanup());

function readWith(fn: string, code: string, device?: number) {
  const scenario = twoGpuScenario();
  scenario.errors = [{ function: fn, return: code, ...(device === undefined ? {} : { device }) }];
  mock?.cleanup();
  mock = useMock(scenario);
  return nvml.readOnce();
}

function expectHealthy(device: DeviceSample) {
  expect(device.lost).toBe(false);
  expect(device.missing).toEqual(NOT_MIG_CAPABLE);
  expect(device.memoryUsedBytes).toBeGreaterThan(0);
}

describe('every error code on every device function', () => {
  for (const [fn, fields] of Object.entries(DEVICE_FUNCTIONS)) {
    it(fn, () => {
      for (const [code, value] of Object.entries(CODES)) {
        const { snapshot } = readWith(fn, code, 0);
        const [d0, d1] = snapshot.devices as [DeviceSample, DeviceSample];
        expectHealthy(d1); // the other GPU never notices
        const context = `${fn} -> ${code}`;
        if (LOST.has(code)) {
          expect(d0.lost, context).toBe(true);
          expect(d0.lostReason, context).toMatchObject({ code, returnValue: value, function: fn });
          expect(d0.memoryUsedBytes, context).toBeNull();
          continue;
        }
        const versioned = (/_v[23]$/.test(fn) && fn !== 'nvmlDeviceGetHandleByIndex_v2' && fn !== 'nvmlDeviceGetPciInfo_v3') ||
          fn === 'nvmlDeviceGetRunningProcessDetailList' || fn === 'nvmlDeviceGetProcessesUtilizationInfo';
        if (VERSION.has(code) && versioned) {
          // The reader steps down to the older entry point and the reading survives.
          if (fn === 'nvmlDeviceGetMemoryInfo_v2') {
            expect(d0.memoryInfoVersion, context).toBe(1);
            expect(d0.memoryUsedBytes, context).toBeGreaterThan(0);
          } else if (fn === 'nvmlDeviceGetRunningProcessDetailList') {
            expect(d0.processRecordLayout, context).toBe('v3'); // the _v3 chain takes over
            expect(d0.processes, context).toHaveLength(2);
          }
          expect(d0.missing.processes, context).toBeUndefined();
          continue;
        }
        if (fn === 'nvmlDeviceGetProcessesUtilizationInfo' && code === 'NOT_FOUND') {
          // NOT_FOUND there means "no new samples since lastSeen", not a failure.
          expect(d0.missing, context).toEqual(NOT_MIG_CAPABLE);
          expect(d0.processUtilizationFresh, context).toBe(false);
          continue;
        }
        for (const field of fields) {
          expect(d0.missing[field], `${context}: ${field}`).toMatchObject({ code, returnValue: value });
          if (field in d0) expect((d0 as unknown as Record<string, unknown>)[field], `${context}: ${field}`).toBeNull();
        }
        expect(d0.lost, context).toBe(false);
        if (fn !== 'nvmlDeviceGetHandleByIndex_v2') {
          // Everything else on the device still reads.
          expect(d0.memoryTotalBytes, context).toBeGreaterThan(0);
          const others = Object.keys(d0.missing).filter((k) => !fields.includes(k) && k !== 'mig');
          expect(others, context).toEqual([]);
        }
        if (fn === 'nvmlDeviceGetMemoryInfo_v2') {
          expect(d0.memoryInfoVersion, context).toBe(1);
          expect(d0.memoryUsedBytes, context).toBeGreaterThan(0);
        }
        if (fn === 'nvmlDeviceGetProcessesUtilizationInfo') {
          expect(d0.processes!.every((p) => p.smUtilizationRatio === null), context).toBe(true);
        }
      }
    });
  }

  it('fallback-only functions fail harmlessly on a current driver', () => {
    for (const fn of UNUSED_ON_CURRENT_DRIVER) {
      for (const code of ['NOT_SUPPORTED', 'GPU_IS_LOST', 'UNKNOWN']) {
        const { system, snapshot } = readWith(fn, code);
        for (const device of snapshot.devices) expectHealthy(device);
        expect(system.missing, `${fn} -> ${code}`).toEqual({});
      }
    }
  });
});

describe('every error code on every system function', () => {
  it('version queries: that field is null with the code, the rest reads', () => {
    for (const [fn, field] of Object.entries(SYSTEM_FUNCTIONS)) {
      for (const [code, value] of Object.entries(CODES)) {
        const { system, snapshot } = readWith(fn, code);
        const context = `${fn} -> ${code}`;
        if (fn === 'nvmlSystemGetCudaDriverVersion_v2') {
          expect(system.cudaDriverVersion, context).toBe('12.4'); // any failure: answered by the v1 call
          expect(system.missing, context).toEqual({});
        } else {
          expect((system as unknown as Record<string, unknown>)[field], context).toBeNull();
          expect(system.missing[field], context).toMatchObject({ code, returnValue: value, function: fn });
        }
        for (const device of snapshot.devices) expectHealthy(device);
      }
    }
  });

  it('nvmlInit_v2 and nvmlDeviceGetCount_v2: a typed error naming the function and code', () => {
    for (const fn of ['nvmlInit_v2', 'nvmlDeviceGetCount_v2']) {
      for (const [code, value] of Object.entries(CODES)) {
        if (code === 'SUCCESS') continue;
        let error: NvmlUnavailableError | undefined;
        try {
          readWith(fn, code);
        } catch (e) {
          error = e as NvmlUnavailableError;
        }
        const context = `${fn} -> ${code}`;
        expect(error, context).toBeInstanceOf(NvmlUnavailableError);
        expect(error, context).toMatchObject({ code, returnValue: value, nvmlFunction: fn });
        expect(error!.message, context).toContain(`(${value})`);
      }
    }
  });

  it('nvmlShutdown failing is harmless', () => {
    const { snapshot } = readWith('nvmlShutdown', 'UNKNOWN');
    expect(snapshot.devices).toHaveLength(2);
    expect(nvml.readOnce().snapshot.devices).toHaveLength(2);
  });
});
