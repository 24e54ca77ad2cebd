// `vramguard watch` on MIG-enabled GPUs, drawn from FakeMonitor samples (the frame is a pure function of
// the state): rows for the MIG devices under their GPU, the reason when their list cannot be read, GI/CI
// columns in the process table, plain lines without a terminal; a GPU without MIG drawn as before.
import pc from 'picocolors';
import { expect, it } from 'vitest';

import { renderFrame, type WatchState } from '../../src/cli/render';
import { plainMigLines, shortMigUuid } from '../../src/cli/render-mig';
import { ProcessDirectory } from '../../src/proc';
import { type FakeDeviceState, FakeMonitor } from '../../src/testing';
import type { Snapshot } from '../../src/types';

const GiB = 2 ** 30;
const MIG_A = 'MIG-aaaaaaaa-0000-4000-8000-00000000000a';
const MIG_B = 'MIG-bbbbbbbb-0000-4000-8000-00000000000b';

function migGpu(extra: Partial<FakeDeviceState> = {}): FakeDeviceState {
  return {
    totalBytes: 80 * GiB,
    mig: {
      instances: [
        { uuid: MIG_A, gpuInstanceId: 1, totalBytes: 40 * GiB, processes: { 4101: 2 * GiB, 4102: GiB } },
        { uuid: MIG_B, gpuInstanceId: 2, computeInstanceId: 1, totalBytes: 20 * GiB },
      ],
    },
    ...extra,
  };
}

function frame(snapshot: Snapshot, size = { width: 120, height: 30 }): string[] {
  const state: WatchState = {
    system: { driverVersion: '550.54.15', nvmlVersion: null, cudaDriverVersion: '12.4', deviceCount: snapshot.devices.length, v3ProcessRecordBytes: 24, v3ProcessRecordEvidence: '', missing: {} },
    isMock: false,
    intervalMs: 1000,
    snapshot,
    history: new Map(),
    directory: new ProcessDirectory(),
    now: new Date(0),
  };
  return renderFrame(state, { ...size, colors: pc.createColors(false), ascii: true, stringWidth: (t) => t.length });
}

it('lists the MIG devices under their GPU: index, GI/CI ids, short UUID, memory used / total, processes', () => {
  const lines = frame(new FakeMonitor([{ totalBytes: 80 * GiB, processes: { 300: GiB } }, migGpu()]).latest()!);
  const gpu1 = lines.findIndex((l) => l.startsWith(' GPU 1 '));
  expect(lines[gpu1]).toContain('2 processes');
  expect(lines[gpu1 + 3]).toMatch(/^ {3}MIG 0 {2}GI 1 CI 0 {3}MIG-aaaaaaaa {2}\[\|*\s*\] {2}3\.0 GiB \/ 40\.0 GiB {5}2 processes$/);
  expect(lines[gpu1 + 4]).toMatch(/^ {3}MIG 1 {2}GI 2 CI 1 {3}MIG-bbbbbbbb {2}\[\s*\] {2}0 MiB \/ 20\.0 GiB {7}0 processes$/);
  // The process table gains GI and CI columns: '-' for the process on the whole GPU 0.
  const head = lines.findIndex((l) => l.startsWith(' GPU  GI  CI      PID'));
  expect(head).toBeGreaterThan(gpu1);
  expect(lines.slice(head + 1, head + 4).map((l) => l.slice(0, 21))).toEqual(['   0   -   -      300', '   1   1   0     4101', '   1   1   0     4102']);
});

it('draws a GPU without MIG (or with MIG off) exactly as before: no rows, no GI/CI columns', () => {
  const plain = frame(new FakeMonitor([{ totalBytes: 80 * GiB, processes: { 300: GiB } }]).latest()!);
  const off = frame(new FakeMonitor([{ totalBytes: 80 * GiB, processes: { 300: GiB }, mig: { mode: 'disabled', instances: [] } }]).latest()!);
  expect(off).toEqual(plain);
  expect(plain.some((l) => l.includes('MIG'))).toBe(false);
  expect(plain.find((l) => l.startsWith(' GPU ') && l.includes('PID'))).toMatch(/^ GPU {6}PID {2}TYPE/);
});

it("says why the MIG devices cannot be listed, and a mode that changes at the next reset", () => {
  const monitor = new FakeMonitor([migGpu({ mig: { instances: [], instancesError: { code: 'NO_PERMISSION', returnValue: 4 } } }), migGpu({ mig: { mode: 'disabled', pendingMode: 'enabled', instances: [] } })]);
  const lines = frame(monitor.latest()!);
  expect(lines).toContain('   MIG  MIG devices unreadable: NO_PERMISSION (nvmlDeviceGetMigDeviceHandleByIndex)');
  expect(lines).toContain('   MIG  MIG enabled after the next GPU reset');
  const snapshot = monitor.latest()!;
  expect(plainMigLines(snapshot.devices[0]!, snapshot)).toBe(`${new Date(snapshot.timestamp).toISOString()}  GPU 0  MIG devices unreadable: NO_PERMISSION (nvmlDeviceGetMigDeviceHandleByIndex)\n`);
});

it('keeps the MIG rows in the one-line-per-GPU layout while they fit, and every frame within the terminal', () => {
  const snapshot = new FakeMonitor([migGpu(), migGpu()]).latest()!;
  const short = frame(snapshot, { width: 100, height: 9 });
  expect(short.length).toBeLessThanOrEqual(9);
  expect(short.filter((l) => /^ {3}MIG \d/.test(l))).toHaveLength(4);
  for (const height of [1, 2, 3, 4, 6, 12]) {
    for (const width of [30, 60, 200]) {
      const lines = frame(snapshot, { width, height });
      expect(lines.length).toBeLessThanOrEqual(height);
      for (const l of lines) expect(l.length).toBeLessThanOrEqual(width);
    }
  }
});

it('prints a plain line per MIG device after its GPU', () => {
  const snapshot = new FakeMonitor([migGpu()]).latest()!;
  const time = new Date(snapshot.timestamp).toISOString();
  expect(plainMigLines(snapshot.devices[0]!, snapshot)).toBe(
    `${time}  GPU 0  MIG 0  ${MIG_A}  GI 1 CI 0  mem 3.0 GiB / 40.0 GiB (8%)  2 processes\n` +
      `${time}  GPU 0  MIG 1  ${MIG_B}  GI 2 CI 1  mem 0 MiB / 20.0 GiB (0%)  0 processes\n`,
  );
  expect(shortMigUuid('MIG-GPU-legacy/1/0')).toBe('MIG-GPU-legacy/1/0');
});
