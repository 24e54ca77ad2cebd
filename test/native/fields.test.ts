// Every field, read through the real addon from the mock NVML, against the scenario that set it.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { InvalidOptionError } from '../../src/errors';
import * as nvml from '../../src/nvml';
import { Sampler } from '../../src/sampler';
import type { MockNvml } from '../../src/testing';
import { GiB, twoGpuScenario, useMock, NOT_MIG_CAPABLE } from '../helpers';

let mock: MockNvml;
beforeAll(() => {
  mock = useMock(twoGpuScenario());
});
afterAll(() => mock.cleanup());

describe('system and device fields', () => {
  it('reports versions and capabilities', () => {
    const probe = nvml.probe();
    expect(probe.isMock).toBe(true);
    expect(probe.libraryPath).toBe(mock.libraryPath);
    expect(probe.system).toMatchObject({
      driverVersion: '550.54.15',
      nvmlVersion: '12.550.54.15',
      cudaDriverVersion: '12.4',
      deviceCount: 2,
    });
    expect(probe.capabilities).toMatchObject({ memoryInfoV2: true, processListV3: true, processUtilization: true });
    expect(nvml.available()).toBe(true);
    expect(nvml.unavailableReason()).toBeNull();
  });

  it('reads every device field with its unit', async () => {
    const sampler = new Sampler({ interval: '20ms' }).start();
    try {
      // Process utilization arrives with the driver's next sample period.
      let snapshot = await sampler.next();
      while (snapshot.devices[0]?.processes?.[0]?.smUtilizationRatio === 0) snapshot = await sampler.next();
      const [d0, d1] = snapshot.devices;
      const reserved = 512 * 2 ** 20;
      expect(d0).toMatchObject({
        index: 0,
        uuid: expect.stringMatching(/^GPU-/),
        name: 'NVIDIA H100 80GB HBM3',
        pciBusId: '00000000:18:00.0',
        lost: false,
        lostReason: null,
        memoryTotalBytes: 80 * GiB,
        memoryUsedBytes: 6 * GiB,
        memoryReservedBytes: reserved,
        memoryFreeBytes: 80 * GiB - reserved - 6 * GiB,
        memoryInfoVersion: 2,
        gpuUtilizationRatio: 0.35,
        memoryUtilizationRatio: 0.12,
        temperatureCelsius: 41,
        powerUsageWatts: 123.456,
        powerLimitWatts: 700,
        smClockHertz: 1980e6,
        memoryClockHertz: 2619e6,
        processRecordLayout: 'detail-list-v1',
        missing: {},
      });
      expect(d0?.pciDeviceId).toBeTypeOf('number');
      expect(d0?.processes).toEqual([
        {
          pid: 1001,
          usedBytes: 4 * GiB,
          types: ['compute'],
          gpuInstanceId: null,
          computeInstanceId: null,
          smUtilizationRatio: 0.3,
          memoryUtilizationRatio: 0.1,
          encoderUtilizationRatio: 0,
          decoderUtilizationRatio: 0,
        },
        {
          pid: 1002,
          usedBytes: 2 * GiB,
          types: ['compute', 'graphics'],
          gpuInstanceId: null,
          computeInstanceId: null,
          smUtilizationRatio: 0.05,
          memoryUtilizationRatio: 0.01,
          encoderUtilizationRatio: 0,
          decoderUtilizationRatio: 0,
        },
      ]);
      // "Not available" bytes are null, and do not count towards the device's used memory.
      expect(d1?.processes).toEqual([
        expect.objectContaining({ pid: 2001, usedBytes: 8 * GiB, types: ['compute'] }),
        expect.objectContaining({ pid: 2002, usedBytes: null, types: ['graphics'] }),
      ]);
      expect(d1?.memoryUsedBytes).toBe(8 * GiB);
      expect(d0?.uuid).not.toBe(d1?.uuid);
      expect(snapshot.sequence).toBeGreaterThan(0);
      expect(Math.abs(snapshot.timestamp - Date.now())).toBeLessThan(5000);
      expect(snapshot.passDurationMs).toBeGreaterThanOrEqual(0);
    } finally {
      sampler.close();
    }
  });

  it('gives null plus NVML reason for absent fields without failing the rest', () => {
    mock.cleanup();
    const scenario = twoGpuScenario();
    scenario.devices[0] = { ...scenario.devices[0]!, temperatureCelsius: null, power: null, clocks: null, utilization: null };
    mock = useMock(scenario);
    const { snapshot } = nvml.readOnce();
    const d0 = snapshot.devices[0]!;
    for (const field of ['temperatureCelsius', 'powerUsageWatts', 'powerLimitWatts', 'smClockHertz', 'memoryClockHertz',
      'gpuUtilizationRatio', 'memoryUtilizationRatio'] as const) {
      expect(d0[field], field).toBeNull();
      expect(d0.missing[field], field).toMatchObject({ code: 'NOT_SUPPORTED', returnValue: 3 });
    }
    expect(d0.missing.temperatureCelsius?.function).toBe('nvmlDeviceGetTemperature');
    expect(d0.missing.powerUsageWatts?.function).toBe('nvmlDeviceGetPowerUsage');
    expect(d0.memoryUsedBytes).toBe(6 * GiB);
    expect(d0.processes).toHaveLength(2);
    expect(snapshot.devices[1]?.missing).toEqual(NOT_MIG_CAPABLE);
  });

  it('reads chosen devices by index or UUID', () => {
    const { snapshot } = nvml.readOnce();
    const uuid = snapshot.devices[1]!.uuid!;
    const sampler = new Sampler({ interval: '50ms', devices: [uuid] }).start();
    try {
      expect(sampler.devices).toEqual([1]);
    } finally {
      sampler.close();
    }
    expect(() => new Sampler({ devices: ['GPU-nope'] }).start()).toThrow(/devices: no device with UUID GPU-nope/);
    expect(() => new Sampler({ devices: [7] }).start()).toThrow(InvalidOptionError);
    expect(() => new Sampler({ devices: [7] }).start()).toThrow(/^devices: no device 7 \(this machine has indexes 0-1\)$/);
  });

  it('reads chosen devices by PCI bus id, short or full form', () => {
    const { snapshot } = nvml.readOnce();
    const full = snapshot.devices[1]!.pciBusId!; // 00000000:28:00.0
    const short = full.replace(/^0+:/, '').toLowerCase(); // 28:00.0
    for (const selector of [full, short, `0000:${short}`]) {
      const sampler = new Sampler({ interval: '50ms', devices: [selector] }).start();
      try {
        expect(sampler.devices).toEqual([1]);
      } finally {
        sampler.close();
      }
    }
    expect(() => new Sampler({ devices: ['7f:00.0'] }).start()).toThrow(/^devices: no device with PCI bus id 7f:00\.0 \(this machine has 0 GPU-/);
  });
});
