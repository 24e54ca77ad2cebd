// Sampler: NVML read on a native thread every `interval`; the latest snapshot read synchronously with
// no NVML call; the next one awaited; watermark crossings and lost GPUs delivered as events.
import { EventEmitter } from 'node:events';

import { type DeviceIdentity, type DeviceTarget, isDeviceSelector, resolveDeviceTarget } from './devices';
import { ClosedError, InvalidOptionError, type NvmlReason } from './errors';
import { projectMigTargets } from './mig';
import * as nvml from './nvml';
import { checkOptionKeys } from './option-keys';
import type { NativeEvent, NativeSampler } from './nvml';
import type { Snapshot, SystemInfo } from './types';
import { type Duration, parseBytes, parseDuration, type ByteSize } from './units';

export interface SamplerOptions {
  /** How often to read; default '1s', at least 10 ms. */
  interval?: Duration;
  /**
   * Devices to read, by index, UUID or PCI bus id (02:00.0 or 00000000:02:00.0); default all. A MIG-
   * UUID reads its GPU and shows that MIG device in the GPU's place (its uuid, memory and processes).
   */
  devices?: Array<number | string>;
  /** Path of libnvidia-ml.so.1 (default: VRAMGUARD_NVML_LIBRARY, else the system's). */
  libraryPath?: string;
}

/** "Tell me when this crosses thresholdBytes": a device's used bytes, or the summed bytes of some pids. */
export interface WatermarkSpec {
  /** Device index. */
  device: number;
  thresholdBytes: ByteSize;
  /** When given, the sum of these pids' used bytes on the device; else the device's used bytes. */
  pids?: number[];
  /** A MIG device of `device`: its used bytes and processes (default: the MIG device this sampler shows there). */
  migUuid?: string;
}

export interface WatermarkCrossing {
  watermark: Watermark;
  device: number;
  valueBytes: number;
  thresholdBytes: number;
  /** True when the value went above the threshold, false when it fell back to or below it. */
  above: boolean;
  /** The snapshot the crossing was seen in (already the sampler's latest). */
  sequence: number;
  /** When the device was read, ms since the epoch. */
  timestamp: number;
}

export interface DeviceLostEvent {
  device: number;
  reason: NvmlReason;
  timestamp: number;
}

export interface DeviceRecoveredEvent {
  device: number;
  timestamp: number;
}

export interface SamplerEvents {
  watermark: [WatermarkCrossing];
  'device-lost': [DeviceLostEvent];
  'device-recovered': [DeviceRecoveredEvent];
  sample: [Snapshot];
}

/** A registered watermark; change it with update(), drop it with remove(). */
export class Watermark {
  /** Last known side of the threshold (undefined before the first evaluation). */
  above: boolean | undefined;
  constructor(
    readonly id: number,
    private spec: { device: number; thresholdBytes: number; pids?: number[]; migUuid?: string },
    private readonly owner: Sampler,
  ) {}

  get device(): number {
    return this.spec.device;
  }
  get thresholdBytes(): number {
    return this.spec.thresholdBytes;
  }
  get pids(): readonly number[] | undefined {
    return this.spec.pids;
  }

  /** Changes the threshold and/or the pid set (e.g. when the process tree changes). */
  update(change: { thresholdBytes?: ByteSize; pids?: number[] }): void {
    const thresholdBytes =
      change.thresholdBytes === undefined ? this.spec.thresholdBytes : parseBytes(change.thresholdBytes, 'thresholdBytes');
    if (thresholdBytes !== this.spec.thresholdBytes) this.above = undefined;
    this.spec = { ...this.spec, thresholdBytes, pids: change.pids ?? this.spec.pids };
    this.owner.syncWatermarks();
  }

  remove(): void {
    this.owner.removeWatermark(this);
  }

  /** @internal */
  toNative(): nvml.NativeWatermark {
    return { id: this.id, ...this.spec };
  }
}

const MIN_INTERVAL_MS = 10;

export class Sampler extends EventEmitter<SamplerEvents> implements AsyncIterable<Snapshot> {
  readonly intervalMs: number;
  private readonly requestedDevices: Array<number | string> | undefined;
  private readonly libraryPath: string | undefined;
  private native: NativeSampler | undefined;
  private state: 'new' | 'running' | 'closed' = 'new';
  private cached: Snapshot | null = null;
  private readonly waiters: Array<{ resolve: (s: Snapshot) => void; reject: (e: Error) => void }> = [];
  private readonly watermarks = new Map<number, Watermark>();
  private nextWatermarkId = 1;
  private startInfo: nvml.NativeStart | undefined;
  /** GPU index → the MIG device shown in its place (from MIG- selectors). */
  private migTargets = new Map<number, string>();

  constructor(options: SamplerOptions = {}) {
    super();
    checkOptionKeys(options, ['interval', 'devices', 'libraryPath']);
    // 'sample' listeners hear every pass: ask the native thread for a wake-up per pass while any exist.
    (this as EventEmitter).on('newListener', (event: string | symbol) => {
      if (event === 'sample') this.native?.requestSample();
    });
    this.intervalMs = parseDuration(options.interval ?? '1s', 'interval');
    if (this.intervalMs < MIN_INTERVAL_MS) {
      throw new InvalidOptionError('interval', `must be at least ${MIN_INTERVAL_MS} ms, got ${this.intervalMs} ms`);
    }
    if (options.devices !== undefined) {
      if (!Array.isArray(options.devices) || options.devices.length === 0) {
        throw new InvalidOptionError('devices', 'expected a non-empty array of device indexes or UUIDs');
      }
      for (const device of options.devices) {
        if (!isDeviceSelector(device)) throw new InvalidOptionError('devices', `not a device index or UUID: ${JSON.stringify(device)}`);
      }
    }
    this.requestedDevices = options.devices;
    this.libraryPath = options.libraryPath;
  }

  /** Loads NVML (shared, reference counted) and starts the native thread. Throws a typed NvmlError. */
  start(): this {
    if (this.state === 'closed') throw new ClosedError('sampler');
    if (this.state === 'running') return this;
    const targets = this.resolveDevices();
    const devices = targets?.map((t) => t.index);
    this.migTargets = new Map(targets?.filter((t) => t.migUuid !== null).map((t) => [t.index, t.migUuid!]));
    const native = nvml.createNativeSampler(
      { intervalMs: this.intervalMs, devices, libraryPath: this.libraryPath },
      (events) => this.onNativeEvents(events),
    );
    const started = native.start();
    if (!started.ok) throw nvml.startFailure(started);
    this.native = native;
    this.startInfo = started;
    this.state = 'running';
    this.syncWatermarks();
    if (this.listenerCount('sample') > 0) native.requestSample();
    return this;
  }

  get running(): boolean {
    return this.state === 'running';
  }

  /** Driver, NVML and CUDA versions, as read at start. */
  get system(): SystemInfo | undefined {
    return this.startInfo?.system;
  }

  /** Indexes of the devices being read. */
  get devices(): number[] {
    return this.startInfo?.devices ?? [];
  }

  /** The MIG devices shown in their GPUs' places: GPU index → MIG UUID. */
  get migDevices(): ReadonlyMap<number, string> {
    return this.migTargets;
  }

  /** Capabilities of the loaded library. */
  get capabilities(): nvml.NvmlCapabilities | undefined {
    return this.startInfo ? nvml.capabilitiesFrom(this.startInfo.symbols) : undefined;
  }

  /** Whether the loaded library is vramguard's mock. */
  get isMock(): boolean {
    return this.startInfo?.isMock ?? false;
  }

  /**
   * The newest snapshot, or null before the first pass. Synchronous, no NVML call: it reads what the
   * native thread published. The same object is returned until a newer pass is published.
   */
  latest(): Snapshot | null {
    if (!this.native) return this.cached;
    const fresh = this.native.latest(this.cached?.sequence);
    if (fresh !== undefined && fresh !== null) this.cached = Object.freeze(projectMigTargets(fresh as Snapshot, this.migTargets));
    return this.cached;
  }

  /** Resolves with the snapshot of the next pass. */
  next(): Promise<Snapshot> {
    if (this.state !== 'running' || !this.native) return Promise.reject(new ClosedError('sampler'));
    return new Promise<Snapshot>((resolve, reject) => {
      this.waiters.push({ resolve, reject });
      if (this.waiters.length === 1) this.native?.setKeepAlive(true);
      this.native?.requestSample();
    });
  }

  /** `for await (const snapshot of sampler)`: one snapshot per pass until the sampler is closed. */
  async *[Symbol.asyncIterator](): AsyncIterator<Snapshot> {
    while (this.state === 'running') {
      try {
        yield await this.next();
      } catch (error) {
        if (error instanceof ClosedError) return;
        throw error;
      }
    }
  }

  /**
   * Registers a watermark; crossings (both ways) arrive as 'watermark' events. The first evaluation
   * (and the first after a threshold change) fires only when the value is above: a new watermark
   * starts out below.
   */
  watch(spec: WatermarkSpec): Watermark {
    if (this.state === 'closed') throw new ClosedError('sampler');
    if (!Number.isInteger(spec.device) || spec.device < 0) {
      throw new InvalidOptionError('device', `expected a device index, got ${JSON.stringify(spec.device)}`);
    }
    if (spec.pids !== undefined && (!Array.isArray(spec.pids) || spec.pids.some((p) => !Number.isInteger(p) || p <= 0))) {
      throw new InvalidOptionError('pids', `expected an array of positive pids, got ${JSON.stringify(spec.pids)}`);
    }
    if (spec.migUuid !== undefined && (typeof spec.migUuid !== 'string' || !/^mig-/i.test(spec.migUuid))) {
      throw new InvalidOptionError('migUuid', `expected a MIG device UUID ("MIG-…"), got ${JSON.stringify(spec.migUuid)}`);
    }
    const migUuid = spec.migUuid ?? this.migTargets.get(spec.device);
    const watermark = new Watermark(
      this.nextWatermarkId++,
      { device: spec.device, thresholdBytes: parseBytes(spec.thresholdBytes, 'thresholdBytes'), pids: spec.pids, ...(migUuid ? { migUuid } : {}) },
      this,
    );
    this.watermarks.set(watermark.id, watermark);
    this.syncWatermarks();
    return watermark;
  }

  /** @internal */
  removeWatermark(watermark: Watermark): void {
    if (this.watermarks.delete(watermark.id)) this.syncWatermarks();
  }

  /** @internal Hands the current watermark set to the native thread. */
  syncWatermarks(): void {
    if (this.state !== 'running' || !this.native) return;
    this.native.setWatermarks([...this.watermarks.values()].map((w) => w.toNative()));
  }

  /** Stops and joins the native thread; pending next() calls reject with ClosedError. Idempotent. */
  close(): void {
    if (this.state === 'closed') return;
    this.latest();
    this.state = 'closed';
    this.native?.stop();
    this.native = undefined;
    const waiters = this.waiters.splice(0);
    for (const waiter of waiters) waiter.reject(new ClosedError('sampler'));
  }

  /**
   * Selectors to GPUs (start-up only): the device count checks indexes, one identity read maps the rest.
   * A GPU is read once: naming it twice, or it and one of its MIG devices, or two of those, is refused.
   */
  private resolveDevices(): DeviceTarget[] | undefined {
    if (!this.requestedDevices) return undefined;
    const options = { libraryPath: this.libraryPath };
    let identities: readonly DeviceIdentity[] | undefined;
    const machine = {
      deviceCount: nvml.deviceCount(options),
      identities: () => (identities ??= nvml.readOnce(options).snapshot.devices),
    };
    const targets: DeviceTarget[] = [];
    const selectors = new Map<number, number | string>();
    for (const selector of this.requestedDevices) {
      const target = resolveDeviceTarget(selector, machine, 'devices');
      const earlier = selectors.get(target.index);
      const same = targets.find((t) => t.index === target.index);
      if (same && (same.migUuid !== null || target.migUuid !== null) && same.migUuid?.toLowerCase() !== target.migUuid?.toLowerCase()) {
        throw new InvalidOptionError(
          'devices',
          `${JSON.stringify(earlier)} and ${JSON.stringify(selector)} are both on GPU ${target.index}: a sampler shows each GPU once, as the board or as one of its MIG devices`,
        );
      }
      if (same) continue;
      selectors.set(target.index, selector);
      targets.push(target);
    }
    return targets;
  }

  private onNativeEvents(events: NativeEvent[]): void {
    if (this.state !== 'running') return;
    for (const event of events) {
      switch (event.type) {
        case 'sample': {
          const snapshot = this.latest();
          const waiters = this.waiters.splice(0);
          if (waiters.length > 0) this.native?.setKeepAlive(false);
          if (this.listenerCount('sample') > 0) this.native?.requestSample();
          if (snapshot) {
            for (const waiter of waiters) waiter.resolve(snapshot);
            this.emit('sample', snapshot);
          }
          break;
        }
        case 'watermark': {
          const watermark = this.watermarks.get(event.id ?? -1);
          if (!watermark) break;
          const first = watermark.above === undefined;
          watermark.above = event.above;
          // Crossings only: a watermark's first evaluation below its threshold is no news.
          if (first && !event.above) break;
          this.latest();
          this.emit('watermark', {
            watermark,
            device: event.device,
            valueBytes: event.valueBytes ?? 0,
            thresholdBytes: event.thresholdBytes ?? 0,
            above: event.above ?? false,
            sequence: event.sequence,
            timestamp: event.timestamp,
          });
          break;
        }
        case 'device-lost':
          this.emit('device-lost', {
            device: event.device,
            reason: event.reason ?? { code: 'GPU_IS_LOST', returnValue: 15, function: 'unknown' },
            timestamp: event.timestamp,
          });
          break;
        case 'device-recovered':
          this.emit('device-recovered', { device: event.device, timestamp: event.timestamp });
          break;
      }
    }
  }
}
