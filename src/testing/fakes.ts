// Fakes for unit-testing code built on vramguard without any NVML: a monitor whose snapshots the test
// sets, evaluating watermarks the way the native sampler does, and a clock the test advances.
import { EventEmitter } from 'node:events';

import { watermarkValue } from '../guard/scope';
import { migDeviceView } from '../mig';
import type { WatermarkSpec } from '../sampler';
import type { DeviceSample, Snapshot } from '../types';
import { type ByteSize, parseBytes } from '../units';
import { type FakeMigInstanceState, type FakeMigState, fakeMigSample, instanceUsedBytes, processList, sumBytes } from './fake-mig';

export interface FakeDeviceState {
  totalBytes: number;
  /** Used bytes not attributed to any process. */
  otherUsedBytes?: number;
  /** pid -> bytes (null: NVML "not available"). */
  processes?: Record<number, number | null>;
  lost?: boolean;
  uuid?: string;
  /**
   * MIG mode and MIG devices, as a MIG-capable GPU reports them (absent: the GPU cannot do MIG). The
   * GPU's memory and process list include its MIG devices', as a privileged reader sees them.
   */
  mig?: FakeMigState;
}

interface FakeWatermark {
  id: number;
  device: number;
  thresholdBytes: number;
  pids?: number[];
  migUuid?: string;
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
    this.devices = devices.map((d) => ({ otherUsedBytes: 0, processes: {}, lost: false, ...d, ...(d.mig ? { mig: copyMig(d.mig) } : {}) }));
    this.wasLost = this.devices.map(() => false);
    if (options.publish ?? true) this.publish();
  }

  /** Changes a device's state (applies at the next publish()); a new `mig` is a reconfiguration. */
  set(device: number, change: Partial<FakeDeviceState>): void {
    Object.assign(this.devices[device]!, change, change.mig ? { mig: copyMig(change.mig) } : {});
  }

  /** Sets (or with null bytes and remove=true, removes) a process's bytes. */
  setProcess(device: number, pid: number, bytes: number | null): void {
    this.devices[device]!.processes![pid] = bytes;
  }

  removeProcess(device: number, pid: number): void {
    delete this.devices[device]!.processes![pid];
  }

  /** Sets a process's bytes in the MIG device `migUuid` (applies at the next publish()). */
  setMigProcess(migUuid: string, pid: number, bytes: number | null): void {
    this.migInstance(migUuid).processes[pid] = bytes;
  }

  removeMigProcess(migUuid: string, pid: number): void {
    delete this.migInstance(migUuid).processes[pid];
  }

  /** The board's used bytes: its own processes and other use, and its MIG devices'. */
  usedBytes(device: number): number {
    const d = this.devices[device]!;
    let used = (d.otherUsedBytes ?? 0) + sumBytes(d.processes);
    for (const instance of this.enabledInstances(d)) used += instanceUsedBytes(instance);
    return used;
  }

  /** A MIG device's used bytes. */
  migUsedBytes(migUuid: string): number {
    return instanceUsedBytes(this.migInstance(migUuid));
  }

  private enabledInstances(d: FakeDeviceState): FakeMigInstanceState[] {
    return d.mig && (d.mig.mode ?? 'enabled') === 'enabled' ? d.mig.instances : [];
  }

  private migInstance(migUuid: string): FakeMigInstanceState & { processes: Record<number, number | null> } {
    const wanted = migUuid.toLowerCase();
    for (const d of this.devices) {
      const instance = d.mig?.instances.find((i) => i.uuid.toLowerCase() === wanted);
      if (instance) {
        instance.processes ??= {};
        return instance as FakeMigInstanceState & { processes: Record<number, number | null> };
      }
    }
    const known = this.devices.flatMap((d) => d.mig?.instances.map((i) => i.uuid) ?? []);
    throw new Error(`no fake MIG device ${migUuid} (the fake GPUs have ${known.length > 0 ? known.join(', ') : 'none'})`);
  }

  /** Publishes a snapshot of the current state: resolves next(), emits crossings and lost/recovered. */
  publish(): Snapshot {
    this.sequence += 1;
    const now = Date.now();
    const devices = this.devices.map((d, index): DeviceSample => {
      const used = this.usedBytes(index);
      // A privileged reader's list: the GPU's own processes, then its MIG devices' (with their instance ids).
      const processes = [...processList(d.processes, null), ...this.enabledInstances(d).flatMap((i) => processList(i.processes, i))];
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
        mig: d.mig && !d.lost ? fakeMigSample(d.mig) : null,
        sampledAt: now,
        readDurationMs: 0,
        missing: d.lost && d.mig && lostReason ? { mig: lostReason } : {},
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
      // As the Sampler: a watermark on a MIG device sums that MIG device's bytes or processes.
      const value = d ? watermarkValue(w.migUuid ? migDeviceView(d, w.migUuid) : d, w.pids) : null;
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
      ...(spec.migUuid ? { migUuid: spec.migUuid } : {}),
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
  watermarkList(): Array<{ device: number; thresholdBytes: number; pids?: number[]; migUuid?: string }> {
    return [...this.watermarks.values()].map(({ device, thresholdBytes, pids, migUuid }) => ({ device, thresholdBytes, pids, ...(migUuid ? { migUuid } : {}) }));
  }

  close(): void {
    this.closed = true;
    for (const waiter of this.waiters.splice(0)) waiter.reject(new Error('fake monitor closed'));
  }
}

/** The test's MIG state, copied (the monitor changes its process maps), each MIG UUID checked. */
function copyMig(mig: FakeMigState): FakeMigState {
  for (const instance of mig.instances) {
    if (typeof instance.uuid !== 'string' || !/^mig-/i.test(instance.uuid)) {
      throw new Error(`fake MIG device uuid: expected "MIG-…", got ${JSON.stringify(instance.uuid)}`);
    }
  }
  return { ...mig, instances: mig.instances.map((i) => ({ ...i, processes: { ...i.processes } })) };
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
