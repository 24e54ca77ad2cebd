// The sampler: latest/next/for-await, live changes, watermarks, shared NVML initialization, and
// proof that reading the latest snapshot makes no NVML call on the JS thread.
import { readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { ClosedError, InvalidOptionError } from '../../src/errors';
import { Sampler, type WatermarkCrossing } from '../../src/sampler';
import { readMockStats, type MockNvml } from '../../src/testing';
import { GiB, twoGpuScenario, useMock, waitFor, NOT_MIG_CAPABLE } from '../helpers';

let mock: MockNvml;
beforeAll(() => {
  mock = useMock(twoGpuScenario());
});
afterAll(() => mock.cleanup());

describe('Sampler', () => {
  it('rejects bad options with one clear message', () => {
    expect(() => new Sampler({ interval: '5ms' })).toThrow(InvalidOptionError);
    expect(() => new Sampler({ interval: '5ms' })).toThrow('interval: must be at least 10 ms, got 5 ms');
    expect(() => new Sampler({ interval: 'soon' })).toThrow(/interval: cannot read "soon"/);
    expect(() => new Sampler({ devices: [-1] })).toThrow(/devices: not a device index or UUID: -1/);
  });

  it('publishes snapshots: null before the first pass, the same object until the next', async () => {
    const sampler = new Sampler({ interval: '10ms' }).start();
    try {
      const first = await sampler.next();
      expect(first.devices).toHaveLength(2);
      const again = sampler.latest();
      const second = await sampler.next();
      expect(second.sequence).toBeGreaterThan(first.sequence);
      expect(sampler.latest()).toBe(sampler.latest());
      expect(Object.isFrozen(again)).toBe(true);
    } finally {
      sampler.close();
    }
    await expect(sampler.next()).rejects.toBeInstanceOf(ClosedError);
  });

  it('iterates with for await until closed', async () => {
    const sampler = new Sampler({ interval: '10ms' }).start();
    const sequences: number[] = [];
    for await (const snapshot of sampler) {
      sequences.push(snapshot.sequence);
      if (sequences.length === 3) setImmediate(() => sampler.close());
    }
    expect(sequences.length).toBeGreaterThanOrEqual(3);
    expect([...sequences].sort((a, b) => a - b)).toEqual(sequences);
  });

  it('sees live changes made through the control file', async () => {
    const sampler = new Sampler({ interval: '10ms' }).start();
    try {
      await sampler.next();
      mock.control.setProcess(0, { pid: 1003, usedBytes: 10 * GiB, type: 'compute' });
      const withNew = await waitFor(sampler, (s) => s.devices[0]!.processes!.some((p) => p.pid === 1003));
      expect(withNew.devices[0]!.memoryUsedBytes).toBe(16 * GiB);
      mock.control.removeProcess(1003, 0);
      mock.control.setDevice(0, { temperatureCelsius: 77 });
      const after = await waitFor(sampler, (s) => s.devices[0]!.temperatureCelsius === 77);
      expect(after.devices[0]!.processes!.map((p) => p.pid)).toEqual([1001, 1002]);
    } finally {
      sampler.close();
    }
  });

  it('wakes JS on watermark crossings of device bytes and of a pid set, both ways', async () => {
    const sampler = new Sampler({ interval: '10ms' }).start();
    const crossings: WatermarkCrossing[] = [];
    sampler.on('watermark', (c) => crossings.push(c));
    try {
      const device = sampler.watch({ device: 0, thresholdBytes: '10GiB' });
      const pids = sampler.watch({ device: 0, thresholdBytes: 5 * GiB, pids: [1001, 1002] });
      await waitFor(sampler, () => crossings.length >= 1 && device.above !== undefined);
      // Crossings only: the device watermark starts below (6 GiB <= 10 GiB) and says nothing.
      expect(crossings.map((c) => [c.watermark.id, c.above])).toEqual([
        [pids.id, true], // 4 + 2 GiB > 5 GiB
      ]);
      expect(device.above).toBe(false);
      crossings.length = 0;
      mock.control.setProcess(0, { pid: 1001, usedBytes: 9 * GiB });
      await waitFor(sampler, () => crossings.length >= 1);
      expect(crossings[0]).toMatchObject({ device: 0, above: true, valueBytes: 11 * GiB, thresholdBytes: 10 * GiB });
      // The snapshot that caused the wake-up is already the latest one.
      expect(sampler.latest()!.sequence).toBeGreaterThanOrEqual(crossings[0]!.sequence);
      expect(sampler.latest()!.devices[0]!.memoryUsedBytes).toBe(11 * GiB);
      crossings.length = 0;
      pids.update({ pids: [1002] });
      await waitFor(sampler, () => crossings.length >= 1);
      expect(crossings[0]).toMatchObject({ above: false, valueBytes: 2 * GiB });
      expect(pids.above).toBe(false);
      device.remove();
      crossings.length = 0;
      mock.control.setProcess(0, { pid: 1001, usedBytes: 1 * GiB });
      // The pass that reads the drop below 10 GiB, and one after it: a removed watermark fires on neither.
      await waitFor(sampler, (s) => s.devices[0]!.memoryUsedBytes === 3 * GiB);
      await sampler.next();
      expect(crossings).toEqual([]);
    } finally {
      sampler.close();
      mock.control.setProcess(0, { pid: 1001, usedBytes: 4 * GiB });
    }
  });

  it('shares one NVML initialization between samplers', async () => {
    const a = new Sampler({ interval: '10ms' }).start();
    const b = new Sampler({ interval: '20ms', devices: [1] }).start();
    await Promise.all([a.next(), b.next()]);
    a.close();
    // Had closing `a` shut NVML down under `b`, b's readings would now fail with UNINITIALIZED.
    await b.next();
    const snapshot = await b.next();
    expect(snapshot.devices.map((d) => d.index)).toEqual([1]);
    expect(snapshot.devices[0]!.memoryUsedBytes).toBe(8 * GiB);
    expect(snapshot.devices[0]!.missing).toEqual(NOT_MIG_CAPABLE);
    b.close();
    expect(a.running || b.running).toBe(false);
  });

  it('makes no NVML call on the JS thread in steady state', async () => {
    const sampler = new Sampler({ interval: '10ms' }).start();
    try {
      await sampler.next();
      const statsPath = join(mock.scenarioPath, '..', 'stats.json');
      const readStats = async () => {
        mock.control.requestStats(statsPath);
        await waitFor(sampler, () => existsSync(statsPath) && readMockStats(statsPath) !== undefined);
        return readMockStats(statsPath)!;
      };
      const before = await readStats();
      for (let i = 0; i < 10_000; i += 1) sampler.latest();
      await sampler.next();
      const after = await readStats();
      const notSampler = (stats: typeof before) =>
        Object.entries(stats.callsByThread)
          .filter(([thread]) => thread !== 'vramguard-smpl' && thread !== 'vramguard-xid') // our native threads
          .reduce((sum, [, calls]) => sum + Object.values(calls).reduce((a, b) => a + b, 0), 0);
      expect(Object.keys(after.callsByThread)).toContain('vramguard-smpl');
      expect(notSampler(after)).toBe(notSampler(before));
      expect(after.calls.nvmlDeviceGetMemoryInfo_v2).toBeGreaterThan(before.calls.nvmlDeviceGetMemoryInfo_v2 ?? 0);
      expect(readFileSync(statsPath, 'utf8').length).toBeGreaterThan(0);
    } finally {
      sampler.close();
    }
  });
});
