// Buffers grow on INSUFFICIENT_SIZE: many processes, with utilization, on one device.
import { afterEach, describe, expect, it } from 'vitest';

import * as nvml from '../../src/nvml';
import { mockDevice, type MockNvml } from '../../src/testing';
import { useMock, NOT_MIG_CAPABLE } from '../helpers';

let mock: MockNvml | undefined;
afterEach(() => mock?.cleanup());

describe('buffers', () => {
  it('grow on INSUFFICIENT_SIZE: 150 processes with utilization on one device', () => {
    const processes = Array.from({ length: 150 }, (_, i) => ({
      pid: 10_000 + i,
      usedBytes: (i + 1) * 2 ** 20,
      type: (['compute', 'graphics', 'mps', 'compute+graphics'] as const)[i % 4],
      smUtilPercent: (i % 100) + 1,
    }));
    mock = useMock({ processUtilizationPeriodMs: 1, devices: [mockDevice(0, 80, { processes })] });
    const d = nvml.readOnce().snapshot.devices[0]!;
    expect(d.missing).toEqual(NOT_MIG_CAPABLE);
    expect(d.processes).toHaveLength(150);
    expect(d.processes!.map((p) => p.pid)).toEqual(processes.map((p) => p.pid));
    expect(d.processes!.map((p) => p.usedBytes)).toEqual(processes.map((p) => p.usedBytes));
    expect(d.processes!.map((p) => p.smUtilizationRatio)).toEqual(processes.map((p) => p.smUtilPercent / 100));
    expect(d.processes![3]!.types).toEqual(['compute', 'graphics']);
  });
});
