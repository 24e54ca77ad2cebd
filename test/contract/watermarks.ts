// One watermark contract for both monitors the guard can have: FakeMonitor (vramguard/testing) and the
// real Sampler on the mock NVML. Each file that runs it supplies a driver; the cases are the same. GPU 1
// is in MIG mode (mig-cases.ts: fakeMigGpu / mockMigGpu) for the MIG cases.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import type { WatermarkSpec } from '../../src/sampler';
import { migCases, type MigDriver } from './mig-cases';

export const GiB = 2 ** 30;
/** Our pids on device 0. */
export const A = 4101;
export const B = 4102;
export const C = 4103;

export interface Crossing {
  id: number;
  above: boolean;
  valueBytes: number;
  thresholdBytes: number;
}

export interface WatermarkDriver extends MigDriver {
  watch(spec: WatermarkSpec): { id: number; update(change: { thresholdBytes?: number; pids?: number[] }): void; remove(): void };
  onCrossing(listener: (crossing: Crossing) => void): void;
  /** Sets a process's bytes on device 0 (applies from the next evaluation). */
  setProcess(pid: number, bytes: number): void;
  /** Resolves once the monitor evaluated its watermarks on the state set so far. */
  settle(): Promise<void>;
  /** Device 0's used bytes with no process of ours (the fake: 0; the mock: what its scenario says). */
  baseUsedBytes(): number;
  close(): Promise<void> | void;
}

export function watermarkContract(name: string, makeDriver: () => Promise<WatermarkDriver>): void {
  describe(`watermark contract: ${name}`, () => {
    let driver: WatermarkDriver;
    let crossings: Crossing[];

    beforeEach(async () => {
      driver = await makeDriver();
      crossings = [];
      driver.onCrossing((c) => crossings.push(c));
      driver.setProcess(A, 2 * GiB);
      driver.setProcess(B, 1 * GiB);
      driver.setProcess(C, 1 * GiB);
      driver.setMigProcess(A, 2 * GiB);
      driver.setMigProcess(B, 1 * GiB);
      await driver.settle();
    });
    afterEach(async () => {
      await driver.close();
    });

    it('says nothing while a new watermark starts below, then fires on each crossing, both ways', async () => {
      const base = driver.baseUsedBytes();
      const w = driver.watch({ device: 0, thresholdBytes: base + 5 * GiB });
      await driver.settle();
      expect(crossings).toEqual([]);
      driver.setProcess(A, 4 * GiB); // 4 + 1 + 1 = 6 GiB > 5
      await driver.settle();
      expect(crossings).toEqual([{ id: w.id, above: true, valueBytes: base + 6 * GiB, thresholdBytes: base + 5 * GiB }]);
      await driver.settle();
      expect(crossings).toHaveLength(1); // staying above is no news
      driver.setProcess(A, 3 * GiB); // 5 GiB: at the threshold is not above
      await driver.settle();
      expect(crossings.map((c) => c.above)).toEqual([true, false]);
    });

    it('fires above: true at once for a watermark that starts above', async () => {
      const w = driver.watch({ device: 0, thresholdBytes: GiB, pids: [A, B] });
      await driver.settle();
      expect(crossings).toEqual([{ id: w.id, above: true, valueBytes: 3 * GiB, thresholdBytes: GiB }]);
    });

    it('sums the watched pids only', async () => {
      const w = driver.watch({ device: 0, thresholdBytes: 4 * GiB, pids: [A, B] });
      await driver.settle();
      driver.setProcess(C, 20 * GiB);
      await driver.settle();
      expect(crossings).toEqual([]);
      driver.setProcess(B, 3 * GiB);
      await driver.settle();
      expect(crossings).toEqual([{ id: w.id, above: true, valueBytes: 5 * GiB, thresholdBytes: 4 * GiB }]);
    });

    it('evaluates a changed threshold afresh (silent when below, fires when above)', async () => {
      const w = driver.watch({ device: 0, thresholdBytes: GiB, pids: [A, B] });
      await driver.settle();
      expect(crossings.map((c) => c.above)).toEqual([true]);
      w.update({ thresholdBytes: 10 * GiB });
      await driver.settle();
      expect(crossings.map((c) => c.above)).toEqual([true]);
      w.update({ thresholdBytes: 2 * GiB });
      await driver.settle();
      expect(crossings.map((c) => [c.above, c.thresholdBytes])).toEqual([
        [true, GiB],
        [true, 2 * GiB],
      ]);
    });

    it('keeps its side when only the pids change', async () => {
      const w = driver.watch({ device: 0, thresholdBytes: 1.5 * GiB, pids: [A, B] });
      await driver.settle();
      expect(crossings.map((c) => c.above)).toEqual([true]);
      w.update({ pids: [A] }); // 2 GiB: still above
      await driver.settle();
      expect(crossings.map((c) => c.above)).toEqual([true]);
      w.update({ pids: [B] }); // 1 GiB: below
      await driver.settle();
      expect(crossings.map((c) => [c.above, c.valueBytes])).toEqual([
        [true, 3 * GiB],
        [false, GiB],
      ]);
    });

    it('fires nothing once removed', async () => {
      const w = driver.watch({ device: 0, thresholdBytes: 4 * GiB, pids: [A, B] });
      await driver.settle();
      w.remove();
      driver.setProcess(A, 10 * GiB);
      await driver.settle();
      expect(crossings).toEqual([]);
    });

    migCases(() => ({ driver, crossings }), { A, B });
  });
}
