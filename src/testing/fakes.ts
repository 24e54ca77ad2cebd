// Fakes for unit-testing code built on vramguard without any NVML: a monitor whose snapshots the test
// sets, evaluating watermarks the way the native sampler does, and a clock the test advances.
import { EventEmitter } from 'node:events';

import { watermarkValue } from '../guard/scope';
import type { WatermarkSpec } from '../sampler';
import type { DeviceSample, ProcessSample, Snapshot } from '../types';
import { type ByteSize, parseBytes } from '../units';

export interface FakeDeviceState {
  totalBytes: number;
  /** Used bytes not attributed to any process. */
  otherUsedBytes?: number;
  /** pid -> bytes (null: NVML "not available"). */
  processes?: Record<number, number | null>;
  lost?: boolean;
  uuid?: string;
}

interface FakeWatermark {
  id: number;
  device: number;
  thresholdBytes: number;
  pids?: number[];
  above: boolean | undefined;
}

/** A monitor (the guard's view of a Sampler) driven by the test: set state, then publish(). */
export class FakeMonitor extends EventEmitter {
  private readonly devices: FakeDeviceState[];
  private snapshot: Snapshot | null = null;
  private sequence = 0;
  private readonly waiters: Array<{ resolve: (s: Snapshot) => void; reject: (e: Error) => void }> = [];
  private readonly watermarks = new Map<number, FakeWatermark>();
  private nextId = 1;
  private wasLost: boolean[] = [];
  closed = false;

  constructor(devices: FakeDeviceState[], options: { publish?: boolean } = {}) {
    super();
    this.devices = devices.map((d) => ({ otherUsedBytes: 0, processes: {}, lost: false, ...d }));
    this.wasLost = this.devices.map(() => false);
    if (options.publish ?? true) this.publish();
  }

  /** Changes a device's state (applies at the next publish()). */
  set(device: number, change: Partial<FakeDeviceState>): void {
    Object.assign(this.devices[device]!, change);
  }

  /** Sets (or with null bytes and remove=true, removes) a process's bytes. */
  setProcess(device: number, pid: number, bytes: number | null): void {
    this.devices[device]!.processes![pid] = bytes;
  }

  removeProcess(device: number, pid: number): void {
    delete this.devices[device]!.processes![pid];
  }

  usedBytes(device: number): number {
    const d = this.devices[device]!;
    return (d.otherUsedBytes ?? 0) + Object.values(d.processes ?? {}).reduce<number>((sum, b) => sum + (b ?? 0), 0);
  }

  /** Publishes a snapshot of the current state: resolves next(), emits crossings and lost/recovered. */
  publish(): Snapshot {
    this.sequence += 1;
    const now = Date.now();
    const devices = this.devices.map((d, index): DeviceSample => {
      const used = this.usedBytes(index);
      const processes: ProcessSample[] = Object.entries(d.processes ?? {})
        .map(([pid, bytes]) => ({
          pid: Number(pid),
          usedBytes: bytes,
          types: ['compute' as const],
          gpuInstanceId: null,
          computeInstanceId: null,
          smUtilizationRatio: 0,
          memoryUtilizationRatio: 0,
          encoderUtilizationRatio: 0,
          decoderUtilizationRatio: 0,
        }))
        .sort((a, b) => a.pid - b.pid);
      const lostReason = d.lost ? { code: 'GPU_IS_LOST', returnValue: 15, function: 'nvmlDeviceGetMemoryInfo_v2' } : null;
      return {
        index,
        uuid: d.uuid ?? `GPU-fake-${index}`,
        name: 'Fake GPU',
        pciBusId: null,
        pciDeviceId: null,
        lost: d.lost ?? false,
        lostReason,
        memoryTotalBytes: d.lost ? null : d.totalBytes,
        memoryUsedBytes: d.lost ? null : used,
        memoryFreeBytes: d.lost ? null : d.totalBytes - used,
        memoryReservedBytes: d.lost ? null : 0,
        memoryInfoVersion: d.lost ? null : 2,
        gpuUtilizationRatio: 0,
        memoryUtilizationRatio: 0,
        temperatureCelsius: 40,
        powerUsageWatts: 100,
        powerLimitWatts: 300,
        smClockHertz: null,
        memoryClockHertz: null,
        processRecordLayout: 'v3',
        processes: d.lost ? null : processes,
        processUtilizationFresh: true,
        utilizationSamplesRejected: 0,
        utilizationSamplesRejectedTotal: 0,
        mig: null,
        sampledAt: now,
        readDurationMs: 0,
        missing: {},
      };
    });
    const snapshot: Snapshot = { sequence: this.sequence, timestamp: now, passDurationMs: 0, devices };
    this.snapshot = Object.freeze(snapshot);
    devices.forEach((d, i) => {
      if (d.lost !== this.wasLost[i]) {
        this.wasLost[i] = d.lost;
        if (d.lost) this.emit('device-lost', { device: i, reason: d.lostReason, timestamp: now });
        else this.emit('device-recovered', { device: i, timestamp: now });
      }
    });
    for (const w of [...this.watermarks.values()]) {
      const d = devices[w.device];
      const value = d ? watermarkValue(d, w.pids) : null;
      if (value === null) continue;
      const above = value > w.thresholdBytes;
      if (above === w.above) continue;
      const first = w.above === undefined;
      w.above = above;
      // As the Sampler: crossings only, a first evaluation below the threshold is no news.
      if (first && !above) continue;
      this.emit('watermark', { watermark: w, device: w.device, valueBytes: value, thresholdBytes: w.thresholdBytes, above, sequence: this.sequence, timestamp: now });
    }
    for (const waiter of this.waiters.splice(0)) waiter.resolve(this.snapshot);
    return this.snapshot;
  }

  latest(): Snapshot | null {
    return this.snapshot;
  }

  next(): Promise<Snapshot> {
    if (this.closed) return Promise.reject(new Error('fake monitor closed'));
    return new Promise((resolve, reject) => this.waiters.push({ resolve, reject }));
  }

  watch(spec: WatermarkSpec): { id: number; update(change: { thresholdBytes?: ByteSize; pids?: number[] }): void; remove(): void } {
    const w: FakeWatermark = {
      id: this.nextId++,
      device: spec.device,
      thresholdBytes: parseBytes(spec.thresholdBytes),
      pids: spec.pids,
      above: undefined,
    };
    this.watermarks.set(w.id, w);
    return {
      id: w.id,
      update: (change) => {
        // As the Sampler: a new threshold is evaluated afresh; new pids keep the side it was on.
        if (change.thresholdBytes !== undefined) {
          const thresholdBytes = parseBytes(change.thresholdBytes);
          if (thresholdBytes !== w.thresholdBytes) w.above = undefined;
          w.thresholdBytes = thresholdBytes;
        }
        if (change.pids !== undefined) w.pids = change.pids;
      },
      remove: () => {
        this.watermarks.delete(w.id);
      },
    };
  }

  /** Registered watermarks (for assertions). */
  watermarkList(): Array<{ device: number; thresholdBytes: number; pids?: number[] }> {
    return [...this.watermarks.values()].map(({ device, thresholdBytes, pids }) => ({ device, thresholdBytes, pids }));
  }

  close(): void {
    this.closed = true;
    for (const waiter of this.waiters.splice(0)) waiter.reject(new Error('fake monitor closed'));
  }
}

/** A clock the test advances; timers run in time order, with microtasks flushed between them. */
export class FakeClock {
  private time: number;
  private timers: Array<{ at: number; seq: number; fn: () => void }> = [];
  private seq = 0;

  constructor(start = 1_000_000) {
    this.time = start;
  }

  now(): number {
    return this.time;
  }

  setTimer(fn: () => void, ms: number): { cancel(): void } {
    const timer = { at: this.time + Math.max(0, ms), seq: this.seq++, fn };
    this.timers.push(timer);
    return {
      cancel: () => {
        this.timers = this.timers.filter((t) => t !== timer);
      },
    };
  }

  /** Moves time forward by ms, running every timer that falls due, in order. */
  async advance(ms: number): Promise<void> {
    const end = this.time + ms;
    for (;;) {
      await flushMicrotasks();
      this.timers.sort((a, b) => a.at - b.at || a.seq - b.seq);
      const due = this.timers[0];
      if (!due || due.at > end) break;
      this.timers.shift();
      this.time = Math.max(this.time, due.at);
      due.fn();
    }
    this.time = end;
    await flushMicrotasks();
  }

  pendingTimers(): number {
    return this.timers.length;
  }
}

/** Lets pending promise callbacks run (several rounds, for chains). */
export async function flushMicrotasks(rounds = 20): Promise<void> {
  for (let i = 0; i < rounds; i += 1) await Promise.resolve();
}
