// VramGuard: per-process VRAM quotas on one GPU. Reacts to the sampler's watermark wake-ups: at the
// soft limit it calls cache releasers, then evicts idle sessions until usage is under the target; at
// the hard limit it also refuses admissions. Admits new loads only when they fit, serialized so that
// concurrent loads never double-book, and drains gracefully.
import { EventEmitter } from 'node:events';

import type { Registry } from 'prom-client';

import {
  GuardDrainingError,
  InvalidOptionError,
  type NvmlReason,
  VramQuotaError,
  type EvictionReport,
} from '../errors';
import * as nvml from '../nvml';
import { Sampler, type WatermarkSpec } from '../sampler';
import { type GuardMetricsOptions, registerGuardMetrics } from '../metrics/guard';
import type { DeviceSample, Snapshot, SystemInfo } from '../types';
import { type ByteSize, parseBytes } from '../units';
import { type Clock, delay, systemClock } from './clock';
import { type GuardOptions, type Logger, parseQuotaSize, type ResolvedOptions, resolveOptions, validateScope } from './options';
import { perProcessProblem, processTree, type ScopeOption, sumPids } from './scope';
import { type EvictReason, Session, type SessionHost, type SessionInfo, type SessionOptions } from './sessions';
import { TrendTracker } from './trend';

/** What the guard needs from a monitor. A Sampler is one; vramguard/testing has a fake one. */
export interface GuardMonitor {
  latest(): Snapshot | null;
  next(): Promise<Snapshot>;
  watch(spec: WatermarkSpec): { update(change: { thresholdBytes?: ByteSize; pids?: number[] }): void; remove(): void };
  on(event: 'watermark', listener: (crossing: { above: boolean; timestamp: number; watermark: unknown }) => void): unknown;
  on(event: 'device-lost' | 'device-recovered', listener: (event: { device: number; reason?: NvmlReason }) => void): unknown;
  close(): void;
}

export type ScopeInForce = 'process-tree' | 'pids' | 'device' | 'ledger';

export interface PressureEvent {
  usageBytes: number;
  softBytes: number;
  hardBytes: number;
  targetBytes: number;
  scope: ScopeInForce;
  trigger: 'watermark' | 'periodic' | 'ledger';
}
export interface ReleaseEvent {
  name: string;
  priority: number;
  durationMs: number;
  usageBeforeBytes: number;
  usageAfterBytes: number;
  /** From the sample that saw the crossing to this releaser's call (first releaser of a relief). */
  reactionMs: number | null;
  error?: Error;
}
export interface EvictEvent {
  id: string;
  bytes: number;
  reason: EvictReason;
  durationMs: number;
  /** The dispose threw or timed out (the guard carried on). */
  error?: Error;
  timedOut: boolean;
}
export interface BreachEvent {
  usageBytes: number;
  hardBytes: number;
  scope: ScopeInForce;
}
export interface TrendEvent {
  slopeBytesPerSecond: number;
  projectedMsToLimit: number;
  usageBytes: number;
  hardBytes: number;
  horizonMs: number;
}
export interface RecycleEvent {
  reason: 'schedule' | 'leak';
  uptimeMs: number;
  detail: string;
}
export interface AdmitEvent {
  id: string | undefined;
  bytes: number;
  waitedMs: number;
  evicted: string[];
}
export interface RefuseEvent {
  id: string | undefined;
  bytes: number;
  error: Error;
}

export interface GuardEvents {
  pressure: [PressureEvent];
  release: [ReleaseEvent];
  evict: [EvictEvent];
  breach: [BreachEvent];
  trend: [TrendEvent];
  recycle: [RecycleEvent];
  admit: [AdmitEvent];
  refuse: [RefuseEvent];
  'device-lost': [{ device: number; reason?: NvmlReason }];
  'device-recovered': [{ device: number }];
}

export type HealthState = 'starting' | 'ready' | 'draining' | 'closed';

export interface GuardHealth {
  state: HealthState;
  /** True when ready and the GPU readings (if any) are fresh. */
  ok: boolean;
  sampleAgeMs: number | null;
  deviceLost: boolean;
  usageBytes: number;
  hardBytes: number;
  source: 'nvml' | 'ledger';
}

export interface ReservationInfo {
  id: string | undefined;
  bytes: number;
  ageMs: number;
}

export interface GuardStatus {
  state: HealthState;
  device: { index: number; uuid: string | null; name: string | null; lost: boolean };
  usage: {
    /** What counts against the quota: NVML's figure for the scope, at least the resident sessions' bytes. */
    scopeBytes: number;
    source: 'nvml' | 'ledger';
    deviceUsedBytes: number | null;
    deviceTotalBytes: number | null;
    deviceFreeBytes: number | null;
    /** Sum of the resident sessions' declared bytes. */
    ledgerBytes: number;
    /** Bytes of recent disposes NVML does not show as returned yet (relief counts them as returned). */
    returningBytes: number;
    /** Outstanding reservations (admitted loads not yet visible to NVML). */
    reservedBytes: number;
    /** What a new admission could get now. */
    freeBytes: number;
  };
  quota: { softBytes: number; hardBytes: number; targetBytes: number };
  scope: { requested: string; inForce: ScopeInForce; reason: string | null; pids: number[] };
  sessions: SessionInfo[];
  reservations: ReservationInfo[];
  sampleAgeMs: number | null;
}

interface Releaser {
  name: string;
  fn: () => unknown;
  priority: number;
}

/** An admitted load: memory set aside until commit() registers the session or cancel() returns it. */
export class Reservation {
  private settled = false;
  constructor(
    readonly id: string | undefined,
    readonly bytes: number,
    readonly createdAt: number,
    private readonly onCommit: (r: Reservation, id: string, options: Omit<SessionOptions, 'bytes'> & { bytes?: ByteSize }) => Session,
    private readonly onCancel: (r: Reservation) => void,
  ) {}

  get active(): boolean {
    return !this.settled;
  }

  /** Registers the loaded model as a session (bytes default to the reserved amount). */
  commit(options: Omit<SessionOptions, 'bytes'> & { bytes?: ByteSize; id?: string }): Session {
    if (this.settled) throw new GuardDrainingError('done with this reservation (already committed or cancelled)');
    const id = options.id ?? this.id;
    if (!id) throw new InvalidOptionError('id', 'commit() needs an id: give one to admit() or commit()');
    const session = this.onCommit(this, id, options);
    this.settled = true;
    return session;
  }

  /** Returns the reserved memory (the load failed or was abandoned). Idempotent. */
  cancel(): void {
    if (this.settled) return;
    this.settled = true;
    this.onCancel(this);
  }
}

interface Measurement {
  /** Counts against the quota: NVML's figure, never less than the resident sessions' declared bytes. */
  scopeBytes: number;
  /** What relief decides on: as scopeBytes, less disposes NVML does not show as returned yet. */
  reliefBytes: number;
  /** Bytes of recent disposes not yet seen back (reliefBytes = scopeBytes - these, at most). */
  returningBytes: number;
  /** NVML's figure as read. */
  rawBytes: number;
  source: 'nvml' | 'ledger';
  inForce: ScopeInForce;
  reason: string | null;
  device: DeviceSample | null;
}

/** A dispose whose memory NVML does not show as returned yet. */
interface PendingReturn {
  bytes: number;
  /** Raw scope usage just before the dispose. */
  baseline: number;
  deadline: number;
}

const PERIODIC_MS = 1000;
/** How long NVML must list only foreign pids before the guard believes it reports host PIDs. */
const HOST_PID_CONFIRM_MS = 5000;
/** How many returnTimeouts a dispose's bytes count as returned before NVML shows them. */
const CREDIT_TIMEOUTS = 3;

export class VramGuard extends EventEmitter<GuardEvents> {
  readonly softBytes: number;
  readonly hardBytes: number;
  readonly targetBytes: number;
  readonly deviceIndex: number;
  readonly sessions: SessionRegistry;
  private readonly options: ResolvedOptions;
  private readonly scopeOption: ScopeOption;
  private readonly clock: Clock;
  private readonly logger: Logger | undefined;
  private readonly monitor: GuardMonitor | null;
  private readonly ownsMonitor: boolean;
  private readonly nvmlReason: string | null;
  private readonly startedAt: number;
  private state: HealthState = 'starting';
  private readonly sessionMap = new Map<string, Session>();
  private readonly releasers: Releaser[] = [];
  private readonly reservations = new Set<Reservation>();
  private readonly pending: PendingReturn[] = [];
  private watermarks: Array<{ remove(): void; update(change: { pids?: number[] }): void }> = [];
  private watermarkMode: string | null = null;
  private treePids: number[];
  private stickyFallback: string | null = null;
  private hostPidsSince: number | null = null;
  private relieving: Promise<void> | null = null;
  private inPressure = false;
  private inBreach = false;
  private relieveAgain = false;
  private crossingAt: number | null = null;
  private admissionQueue: Promise<unknown> = Promise.resolve();
  private periodic: { cancel(): void } | undefined;
  private readonly trend: TrendTracker | null;
  private lastTrendAt = -Infinity;
  private leakSuspected = false;
  private lastRecycleAt: number;
  private deviceLost = false;
  private drainPromise: Promise<void> | null = null;
  private shutdownHandlers: Array<[NodeJS.Signals, () => void]> = [];

  constructor(options: GuardOptions & { monitor?: GuardMonitor; clock?: Clock } = {}) {
    super();
    this.options = resolveOptions(options);
    this.scopeOption = validateScope(options.scope);
    this.clock = options.clock ?? systemClock;
    this.logger = options.logger;
    this.startedAt = this.clock.now();
    this.lastRecycleAt = this.startedAt;
    this.trend = this.options.trend ? new TrendTracker(this.options.trend.window) : null;

    const device = options.device ?? 0;
    if (!((typeof device === 'number' && Number.isInteger(device) && device >= 0) || (typeof device === 'string' && device.length > 0))) {
      throw new InvalidOptionError('device', `expected a device index or UUID, got ${JSON.stringify(device)}`);
    }
    let totalBytes: number | null = null;
    let deviceIndex = typeof device === 'number' ? device : -1;
    if (options.monitor) {
      this.monitor = options.monitor;
      this.ownsMonitor = false;
      this.nvmlReason = null;
      const known = options.monitor.latest()?.devices.find((d) => d.index === deviceIndex || d.uuid === device);
      if (known) {
        deviceIndex = known.index;
        totalBytes = known.memoryTotalBytes;
      } else if (deviceIndex < 0) {
        throw new InvalidOptionError('device', `no device with UUID ${String(device)} on the monitor`);
      }
    } else if (nvml.available({ libraryPath: options.libraryPath })) {
      // Start-up only: one read to check the device and learn its total.
      const { snapshot } = nvml.readOnce({ libraryPath: options.libraryPath });
      const found = snapshot.devices.find((d) => d.index === device || d.uuid === device || d.pciBusId === device);
      if (!found) {
        const list = snapshot.devices.map((d) => `${d.index} ${d.uuid ?? '?'} ${d.name ?? ''}`.trim()).join('; ');
        throw new InvalidOptionError('device', `no GPU ${JSON.stringify(device)} (NVML reports: ${list || 'no devices'})`);
      }
      deviceIndex = found.index;
      totalBytes = found.memoryTotalBytes;
      this.monitor = new Sampler({ interval: this.options.interval, devices: [found.index], libraryPath: options.libraryPath }).start();
      this.ownsMonitor = true;
      this.nvmlReason = null;
    } else {
      this.monitor = null;
      this.ownsMonitor = false;
      this.nvmlReason = nvml.unavailableReason({ libraryPath: options.libraryPath });
      if (typeof device === 'string') {
        throw new InvalidOptionError('device', `cannot find GPU ${device}: NVML is unavailable (${this.nvmlReason})`);
      }
    }
    this.deviceIndex = deviceIndex;

    const quota = options.quota ?? { soft: '85%', hard: '95%' };
    if (typeof quota !== 'object' || quota === null || quota.hard === undefined) {
      throw new InvalidOptionError('quota', 'expected { soft?, hard } with bytes, sizes like "20GiB", or percentages like "90%"');
    }
    this.hardBytes = parseQuotaSize(quota.hard, 'quota.hard', totalBytes, this.nvmlReason);
    this.softBytes =
      quota.soft === undefined
        ? Math.floor(this.hardBytes * 0.9)
        : parseQuotaSize(quota.soft, 'quota.soft', totalBytes, this.nvmlReason);
    if (this.softBytes > this.hardBytes) {
      throw new InvalidOptionError('quota.soft', `(${this.softBytes} bytes) is above quota.hard (${this.hardBytes} bytes)`);
    }
    if (totalBytes !== null && this.hardBytes > totalBytes) {
      throw new InvalidOptionError('quota.hard', `(${this.hardBytes} bytes) is above the device's total (${totalBytes} bytes)`);
    }
    const hysteresis =
      options.hysteresis === undefined
        ? Math.floor(this.softBytes * 0.05)
        : parseQuotaSize(options.hysteresis, 'hysteresis', totalBytes, this.nvmlReason);
    if (hysteresis >= this.softBytes) {
      throw new InvalidOptionError('hysteresis', `(${hysteresis} bytes) must be below quota.soft (${this.softBytes} bytes)`);
    }
    this.targetBytes = this.softBytes - hysteresis;
    this.treePids = this.scopeOption === 'process-tree' ? processTree() : [];
    this.sessions = new SessionRegistry(this);

    if (this.monitor) {
      this.monitor.on('watermark', (crossing) => this.onCrossing(crossing));
      this.monitor.on('device-lost', (event) => {
        if (event.device !== this.deviceIndex) return;
        this.deviceLost = true;
        this.log('error', { device: event.device, reason: event.reason }, 'GPU lost: running on the ledger until it returns');
        this.emit('device-lost', event);
      });
      this.monitor.on('device-recovered', (event) => {
        if (event.device !== this.deviceIndex) return;
        this.deviceLost = false;
        this.log('info', { device: event.device }, 'GPU back');
        this.emit('device-recovered', { device: event.device });
      });
      this.syncWatermarks();
      if (this.monitor.latest()) this.becomeReady();
      else this.monitor.next().then(() => this.becomeReady(), () => undefined);
    } else {
      this.log('warn', { reason: this.nvmlReason }, 'NVML unavailable: the guard runs on its ledger (declared session bytes)');
      this.state = 'ready';
    }
    this.schedulePeriodic();
  }

  // ---------------------------------------------------------------- public API

  /** Registers a cache releaser, called at the soft limit before any eviction (lower priority first). */
  addReleaser(name: string, fn: () => unknown, options: { priority?: number } = {}): () => void {
    if (typeof name !== 'string' || name.length === 0) throw new InvalidOptionError('name', 'expected a non-empty string');
    if (typeof fn !== 'function') throw new InvalidOptionError('releaser', `${name}: expected a function`);
    const priority = options.priority ?? 0;
    if (!Number.isFinite(priority)) throw new InvalidOptionError('priority', `${name}: expected a finite number`);
    const releaser = { name, fn, priority };
    this.releasers.push(releaser);
    this.releasers.sort((a, b) => a.priority - b.priority);
    return () => {
      const at = this.releasers.indexOf(releaser);
      if (at >= 0) this.releasers.splice(at, 1);
    };
  }

  /**
   * Reserves bytes for a load. Evicts idle sessions to make room; throws VramQuotaError (with the
   * figures) when it cannot fit. Admissions are serialized: concurrent calls never double-book.
   */
  admit(bytes: ByteSize, options: { id?: string } = {}): Promise<Reservation> {
    const need = parseBytes(bytes, 'bytes');
    const run = () => this.admitNow(need, options.id);
    const result = this.admissionQueue.then(run, run);
    this.admissionQueue = result.catch(() => undefined);
    return result;
  }

  health(): GuardHealth {
    const m = this.measure();
    const age = this.sampleAgeMs();
    const fresh = this.monitor === null || (age !== null && age <= Math.max(3 * this.options.interval, 2000));
    return {
      state: this.state,
      ok: this.state === 'ready' && fresh && !this.deviceLost,
      sampleAgeMs: age,
      deviceLost: this.deviceLost,
      usageBytes: m.scopeBytes,
      hardBytes: this.hardBytes,
      source: m.source,
    };
  }

  status(): GuardStatus {
    const m = this.measure();
    const device = m.device ?? this.deviceSample();
    return {
      state: this.state,
      device: {
        index: this.deviceIndex,
        uuid: device?.uuid ?? null,
        name: device?.name ?? null,
        lost: this.deviceLost,
      },
      usage: {
        scopeBytes: m.scopeBytes,
        source: m.source,
        deviceUsedBytes: device?.memoryUsedBytes ?? null,
        deviceTotalBytes: device?.memoryTotalBytes ?? null,
        deviceFreeBytes: device?.memoryFreeBytes ?? null,
        ledgerBytes: this.ledgerBytes(),
        returningBytes: m.returningBytes,
        reservedBytes: this.reservedBytes(),
        freeBytes: this.freeBytes(m).free,
      },
      quota: { softBytes: this.softBytes, hardBytes: this.hardBytes, targetBytes: this.targetBytes },
      scope: {
        requested: typeof this.scopeOption === 'string' ? this.scopeOption : 'pids',
        inForce: m.inForce,
        reason: m.reason,
        pids: this.scopePids(),
      },
      sessions: [...this.sessionMap.values()].map((s) => s.info()),
      reservations: [...this.reservations].map((r) => ({ id: r.id, bytes: r.bytes, ageMs: this.clock.now() - r.createdAt })),
      sampleAgeMs: this.sampleAgeMs(),
    };
  }

  /**
   * Refuses admissions, waits (up to drainTimeout) for in-flight uses, disposes every session and
   * stops sampling. Idempotent.
   */
  drain(): Promise<void> {
    this.drainPromise ??= this.drainNow();
    return this.drainPromise;
  }

  /** Drains, then releases everything; the guard cannot be used again. */
  async close(): Promise<void> {
    await this.drain();
    this.state = 'closed';
    this.uninstallShutdownHandlers();
  }

  /**
   * SIGTERM/SIGINT drain and close the guard, run onShutdown (close your server there), then exit with
   * exitCode (default 0; false: do not exit). A second signal exits at once with 1. Returns an uninstaller.
   */
  installShutdownHandlers(
    options: { signals?: NodeJS.Signals[]; onShutdown?: (signal: NodeJS.Signals) => unknown; exitCode?: number | false } = {},
  ): () => void {
    const signals = options.signals ?? ['SIGTERM', 'SIGINT'];
    let shuttingDown = false;
    for (const signal of signals) {
      const handler = () => {
        if (shuttingDown) {
          process.exit(1);
        }
        shuttingDown = true;
        this.log('info', { signal }, 'shutting down: draining');
        void (async () => {
          let code = options.exitCode ?? 0;
          try {
            await Promise.all([this.close(), Promise.resolve(options.onShutdown?.(signal))]);
          } catch (error) {
            this.log('error', { err: error }, 'shutdown failed');
            if (code !== false) code = 1;
          }
          if (code !== false) process.exit(code);
        })();
      };
      process.on(signal, handler);
      this.shutdownHandlers.push([signal, handler]);
    }
    return () => this.uninstallShutdownHandlers();
  }

  /** The latest snapshot of this guard's GPU (no NVML call); null without NVML or before the first pass. */
  latestSnapshot(): Snapshot | null {
    return this.monitor?.latest() ?? null;
  }

  /** Driver, NVML and CUDA versions, when the guard samples NVML itself. */
  get nvmlSystem(): SystemInfo | null {
    return this.monitor instanceof Sampler ? (this.monitor.system ?? null) : null;
  }

  /** Sampling interval in milliseconds. */
  get intervalMs(): number {
    return this.options.interval;
  }

  /**
   * Registers this guard's GPU and guard metrics on a prom-client Registry you own (never the global
   * default one unless you pass it). Several guards may share a registry; registering twice is a no-op.
   */
  metrics(registry: Registry, options: GuardMetricsOptions = {}): this {
    registerGuardMetrics(registry, this, options);
    return this;
  }

  /** @internal Calls listener after every sampling pass (while the guard samples NVML itself). */
  observeSamples(listener: (snapshot: Snapshot) => void): () => void {
    const monitor = this.monitor;
    if (!(monitor instanceof Sampler)) return () => undefined;
    monitor.on('sample', listener);
    return () => monitor.off('sample', listener);
  }

  // ---------------------------------------------------------------- SessionHost (used by sessions)

  /** @internal */
  hostFor(): SessionHost {
    return {
      now: () => this.clock.now(),
      setTimer: (fn, ms) => this.clock.setTimer(fn, ms),
      defaultIdleTtlMs: this.options.idleTtl,
      assertAcceptingUses: () => {
        if (this.state === 'draining' || this.state === 'closed') throw new GuardDrainingError(this.state);
      },
      evict: (session, reason) => this.evict(session, reason),
      reload: (session) => this.reload(session),
      useEnded: () => {
        if (!this.monitor || this.deviceLost) this.checkLedgerPressure();
      },
    };
  }

  /** @internal */
  addSession(session: Session): void {
    const existing = this.sessionMap.get(session.id);
    if (existing && existing.state !== 'removed') {
      session.cancelIdleTimer();
      throw new InvalidOptionError('id', `a session named ${session.id} is already registered`);
    }
    this.sessionMap.set(session.id, session);
    this.checkLedgerPressure();
  }

  /** @internal */
  sessionById(id: string): Session | undefined {
    return this.sessionMap.get(id);
  }

  /** @internal */
  allSessions(): Session[] {
    return [...this.sessionMap.values()];
  }

  /** @internal */
  removeSession(session: Session): void {
    if (this.sessionMap.get(session.id) === session) this.sessionMap.delete(session.id);
    session.state = 'removed';
  }

  // ---------------------------------------------------------------- measuring

  private deviceSample(): DeviceSample | null {
    return this.monitor?.latest()?.devices.find((d) => d.index === this.deviceIndex) ?? null;
  }

  private sampleAgeMs(): number | null {
    const device = this.deviceSample();
    return device ? Math.max(0, Date.now() - device.sampledAt) : null;
  }

  private scopePids(): number[] {
    if (this.scopeOption === 'process-tree') return this.treePids;
    if (typeof this.scopeOption === 'object') return this.scopeOption.pids;
    return [];
  }

  private ledgerBytes(): number {
    let bytes = 0;
    for (const s of this.sessionMap.values()) if (s.resident) bytes += s.bytes;
    return bytes;
  }

  /** Scope usage now, less disposes still on their way back. */
  private measure(): Measurement {
    const m = this.measureRaw();
    if (m.source === 'ledger') return m;
    const raw = m.scopeBytes;
    const now = this.clock.now();
    // A pending change ends when NVML shows most of it, or at its deadline.
    for (let i = this.pending.length - 1; i >= 0; i -= 1) {
      const p = this.pending[i]!;
      if (p.deadline <= now || p.baseline - raw >= this.options.returnRatio * p.bytes) this.pending.splice(i, 1);
    }
    // Sessions NVML does not show yet (registered a sample ago) count at their declared bytes...
    const ledger = this.ledgerBytes();
    const scopeBytes = Math.max(raw, ledger);
    // ...and for relief, disposes not yet reflected count as returned (never cascade on lagging readings).
    let credit = 0;
    for (const p of this.pending) credit += Math.max(0, p.bytes - Math.max(0, p.baseline - raw));
    const reliefBytes = Math.max(raw - credit, ledger);
    return { ...m, scopeBytes, reliefBytes, returningBytes: scopeBytes - reliefBytes, rawBytes: raw };
  }

  /** Scope usage as NVML reports it (or the ledger when NVML cannot tell). */
  private measureRaw(): Measurement {
    const device = this.deviceSample();
    if (!device || device.lost || device.memoryUsedBytes === null || this.deviceLost) {
      const reason = this.monitor === null
        ? `NVML unavailable: ${this.nvmlReason ?? 'unknown'}`
        : !device
          ? 'no sample yet'
          : `GPU ${this.deviceIndex} unreadable (${device.lostReason?.code ?? device.missing.memoryUsedBytes?.code ?? 'lost'})`;
      const bytes = this.ledgerBytes() + this.reservedBytes();
      return { scopeBytes: bytes, rawBytes: bytes, reliefBytes: bytes, returningBytes: 0, source: 'ledger', inForce: 'ledger', reason, device };
    }
    if (this.scopeOption === 'device') {
      return { scopeBytes: device.memoryUsedBytes, rawBytes: device.memoryUsedBytes, reliefBytes: device.memoryUsedBytes, returningBytes: 0, source: 'nvml', inForce: 'device', reason: null, device };
    }
    const pids = this.scopePids();
    const reason = this.stickyFallback ?? this.perProcessFallback(device, pids);
    if (reason !== null) {
      const bytes = device.memoryUsedBytes;
      return { scopeBytes: bytes, rawBytes: bytes, reliefBytes: bytes, returningBytes: 0, source: 'nvml', inForce: 'device', reason: `fell back to device scope: ${reason}`, device };
    }
    const usage = sumPids(device, pids)!;
    const inForce = this.scopeOption === 'process-tree' ? 'process-tree' : 'pids';
    return { scopeBytes: usage.bytes, rawBytes: usage.bytes, reliefBytes: usage.bytes, returningBytes: 0, source: 'nvml', inForce, reason: null, device };
  }

  /**
   * Why the scope must be the device's usage now, or null when per-process accounting works. Host PIDs
   * must persist for HOST_PID_CONFIRM_MS before they count (a process that just exited lingers in
   * NVML's list for a moment); host PIDs and unattributable memory then hold for good.
   */
  private perProcessFallback(device: DeviceSample, pids: readonly number[]): string | null {
    const problem = perProcessProblem(device, pids);
    if (problem?.kind !== 'host-pids') this.hostPidsSince = null;
    if (problem === null) return null;
    if (problem.kind === 'host-pids') {
      const now = this.clock.now();
      this.hostPidsSince ??= now;
      if (now - this.hostPidsSince < HOST_PID_CONFIRM_MS) return null;
    }
    if (problem.kind !== 'unlisted') {
      this.stickyFallback = problem.message;
      this.log('warn', { problem: problem.message }, 'per-process accounting unavailable: using device scope');
      this.syncWatermarks();
    }
    return problem.message;
  }

  /** Admitted loads not yet committed as sessions. */
  private reservedBytes(): number {
    let bytes = 0;
    for (const r of this.reservations) bytes += r.bytes;
    return bytes;
  }

  /** What an admission could get: min(device free - padding, hard - scope usage) - reservations. */
  private freeBytes(m: Measurement): { free: number; deviceFree: number | null; reserved: number } {
    if (m.source === 'ledger') {
      // On the ledger, scopeBytes already includes the reservations.
      return { free: this.hardBytes - m.scopeBytes, deviceFree: null, reserved: this.reservedBytes() };
    }
    const reserved = this.reservedBytes();
    const quotaFree = this.hardBytes - m.scopeBytes - reserved;
    const deviceFree = m.device?.memoryFreeBytes ?? null;
    const deviceRoom = deviceFree === null ? Infinity : deviceFree - this.options.padding - reserved;
    return { free: Math.min(quotaFree, deviceRoom), deviceFree: deviceFree === null ? null : deviceFree - this.options.padding, reserved };
  }

  // ---------------------------------------------------------------- watermarks and relief

  private syncWatermarks(): void {
    if (!this.monitor || this.state === 'draining' || this.state === 'closed') return;
    const pids = this.scopeOption === 'device' || this.stickyFallback ? undefined : this.scopePids();
    const mode = pids ? `pids:${pids.join(',')}` : 'device';
    if (mode === this.watermarkMode) return;
    if (pids && this.watermarkMode?.startsWith('pids:')) {
      for (const w of this.watermarks) w.update({ pids });
    } else {
      for (const w of this.watermarks) w.remove();
      this.watermarks = [this.softBytes, this.hardBytes].map((thresholdBytes) =>
        this.monitor!.watch({ device: this.deviceIndex, thresholdBytes, pids }),
      );
    }
    this.watermarkMode = mode;
  }

  private onCrossing(crossing: { above: boolean; timestamp: number; watermark: unknown }): void {
    if (!crossing.above || this.state === 'draining' || this.state === 'closed') return;
    this.crossingAt ??= crossing.timestamp;
    void this.relieve('watermark');
  }

  private checkLedgerPressure(): void {
    if (this.state === 'draining' || this.state === 'closed') return;
    if (this.monitor && !this.deviceLost) return;
    if (this.measure().reliefBytes > this.softBytes) void this.relieve('ledger');
  }

  /** Single flight: releasers, then evictions, until usage is under the target. */
  private relieve(trigger: PressureEvent['trigger']): Promise<void> {
    if (this.relieving) {
      this.relieveAgain = true;
      return this.relieving;
    }
    this.relieving = this.relieveNow(trigger).finally(() => {
      this.relieving = null;
      this.crossingAt = null;
      if (this.relieveAgain) {
        this.relieveAgain = false;
        if (this.measure().reliefBytes > this.softBytes) void this.relieve(trigger);
      }
    });
    return this.relieving;
  }

  /** Ends the pressure and breach episodes once usage is back under their limits. */
  private updateEpisodes(usageBytes: number): void {
    if (usageBytes <= this.softBytes) this.inPressure = false;
    if (usageBytes <= this.hardBytes) this.inBreach = false;
  }

  private async relieveNow(trigger: PressureEvent['trigger']): Promise<void> {
    let m = this.measure();
    this.updateEpisodes(m.reliefBytes);
    if (m.reliefBytes <= this.softBytes) return;
    const pressure: PressureEvent = {
      usageBytes: m.reliefBytes,
      softBytes: this.softBytes,
      hardBytes: this.hardBytes,
      targetBytes: this.targetBytes,
      scope: m.inForce,
      trigger,
    };
    // Events mark the start of an episode; relief itself is retried while usage stays high.
    if (!this.inPressure) {
      this.inPressure = true;
      this.log('warn', pressure, 'VRAM over the soft limit');
      this.emit('pressure', pressure);
    }
    if (m.reliefBytes > this.hardBytes && !this.inBreach) {
      this.inBreach = true;
      const breach = { usageBytes: m.reliefBytes, hardBytes: this.hardBytes, scope: m.inForce };
      this.log('error', breach, 'VRAM over the hard limit: refusing admissions');
      this.emit('breach', breach);
    }
    let first = true;
    for (const releaser of [...this.releasers]) {
      if (m.reliefBytes <= this.targetBytes || this.state === 'closed') return;
      const reactionMs = first && this.crossingAt !== null ? Math.max(0, Date.now() - this.crossingAt) : null;
      first = false;
      const started = this.clock.now();
      let error: Error | undefined;
      try {
        await this.bounded(() => releaser.fn(), this.options.releaserTimeout, `releaser ${releaser.name}`);
      } catch (e) {
        error = e instanceof Error ? e : new Error(String(e));
        this.log('error', { releaser: releaser.name, err: error }, 'releaser failed');
      }
      const before = m.reliefBytes;
      m = await this.fresh();
      this.emit('release', {
        name: releaser.name,
        priority: releaser.priority,
        durationMs: this.clock.now() - started,
        usageBeforeBytes: before,
        usageAfterBytes: m.reliefBytes,
        reactionMs,
        error,
      });
    }
    while (m.reliefBytes > this.targetBytes && this.state !== 'draining' && this.state !== 'closed') {
      const victim = this.pickVictim();
      if (!victim) {
        this.log('warn', { usageBytes: m.reliefBytes, targetBytes: this.targetBytes }, 'nothing left to evict');
        return;
      }
      await this.evictAndWait(victim, 'pressure');
      m = this.measure();
    }
  }

  /** The next sample's measurement (NVML mode), or the ledger now. */
  private async fresh(): Promise<Measurement> {
    if (this.monitor && !this.deviceLost) {
      await Promise.race([this.monitor.next().catch(() => undefined), delay(this.clock, this.options.returnTimeout)]);
    }
    return this.measure();
  }

  /** Victims: never pinned, never busy; lower priority, then least recently used, then larger. */
  private pickVictim(): Session | undefined {
    let best: Session | undefined;
    for (const s of this.sessionMap.values()) {
      if (s.state !== 'loaded' || s.pinned || s.busy > 0) continue;
      if (
        !best ||
        s.priority < best.priority ||
        (s.priority === best.priority &&
          (s.lastUsedAt < best.lastUsedAt || (s.lastUsedAt === best.lastUsedAt && s.bytes > best.bytes)))
      ) {
        best = s;
      }
    }
    return best;
  }

  private blockedSessions(): EvictionReport['blocked'] {
    const blocked: EvictionReport['blocked'] = [];
    for (const s of this.sessionMap.values()) {
      if (s.state === 'loading') blocked.push({ id: s.id, bytes: s.bytes, reason: 'loading' });
      else if (s.state === 'loaded' && s.busy > 0) blocked.push({ id: s.id, bytes: s.bytes, reason: 'busy' });
      else if (s.state === 'loaded' && s.pinned) blocked.push({ id: s.id, bytes: s.bytes, reason: 'pinned' });
    }
    return blocked;
  }

  /** Evicts, then waits until most of the bytes came back (or the timeout): no cascades on lag. */
  private async evictAndWait(victim: Session, reason: EvictReason): Promise<number> {
    const before = this.rawScopeBytes();
    if (!(await this.evict(victim, reason))) return 0;
    if (before === null || !this.monitor) return victim.bytes;
    const deadline = this.clock.now() + this.options.returnTimeout;
    const wanted = victim.bytes * this.options.returnRatio;
    for (;;) {
      const raw = this.rawScopeBytes();
      if (raw !== null && before - raw >= wanted) return before - raw;
      const left = deadline - this.clock.now();
      if (left <= 0) {
        this.log('warn', { id: victim.id, bytes: victim.bytes }, 'memory did not come back in time after dispose');
        return Math.max(0, before - (raw ?? before));
      }
      await Promise.race([this.monitor.next().catch(() => undefined), delay(this.clock, left)]);
    }
  }

  /** Scope usage as NVML reports it, without pending credits; null in ledger mode. */
  private rawScopeBytes(): number | null {
    const m = this.measureRaw();
    return m.source === 'nvml' ? m.rawBytes : null;
  }

  /** @internal Disposes once, time-bounded; a dispose that throws or hangs is reported, never blocks. */
  async evict(session: Session, reason: EvictReason): Promise<boolean> {
    // Pinned sessions go only when asked (unload, drain); busy ones only when a drain timed out.
    if (session.state !== 'loaded') return false;
    if (session.pinned && reason !== 'unload' && reason !== 'drain') return false;
    if (session.busy > 0 && reason !== 'drain') return false;
    session.state = 'evicting';
    session.cancelIdleTimer();
    const baseline = this.rawScopeBytes();
    const started = this.clock.now();
    const dispose = session.takeDispose();
    const outcome = this.bounded(dispose, this.options.disposeTimeout, `dispose of ${session.id}`).then(
      () => ({ error: undefined, timedOut: false }),
      (error: unknown) => ({
        error: error instanceof Error ? error : new Error(String(error)),
        timedOut: error instanceof TimeoutError,
      }),
    );
    session.transition = outcome;
    const { error, timedOut } = await outcome;
    session.transition = undefined;
    session.evictions += 1;
    if (session.state === 'evicting') session.state = 'evicted';
    if (baseline !== null) {
      // Counted as returned for a while even if NVML lags: evictAndWait waits returnTimeout, and a
      // reading that lags longer must not trigger the next eviction at once.
      this.pending.push({
        bytes: session.bytes,
        baseline,
        deadline: this.clock.now() + CREDIT_TIMEOUTS * this.options.returnTimeout,
      });
    }
    const event: EvictEvent = { id: session.id, bytes: session.bytes, reason, durationMs: this.clock.now() - started, timedOut };
    if (error) event.error = error;
    this.log(error ? 'error' : 'info', { ...event, err: error }, error ? 'dispose failed' : 'session evicted');
    this.emit('evict', event);
    return true;
  }

  private async bounded(fn: () => unknown, timeoutMs: number, what: string): Promise<void> {
    let timer: { cancel(): void } | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = this.clock.setTimer(() => reject(new TimeoutError(`${what} did not finish within ${timeoutMs} ms`)), timeoutMs);
    });
    try {
      await Promise.race([Promise.resolve().then(fn), timeout]);
    } finally {
      timer?.cancel();
    }
  }

  // ---------------------------------------------------------------- admission

  private async admitNow(need: number, id: string | undefined): Promise<Reservation> {
    const started = this.clock.now();
    const evicted: string[] = [];
    let releasedBytes = 0;
    const refuse = (why: string, m: Measurement): never => {
      const figures = this.freeBytes(m);
      const error = new VramQuotaError(
        id,
        {
          neededBytes: need,
          freeBytes: Math.max(0, figures.free),
          deviceFreeBytes: figures.deviceFree,
          softBytes: this.softBytes,
          hardBytes: this.hardBytes,
          scopeUsageBytes: m.scopeBytes,
          reservedBytes: figures.reserved,
          eviction: { releasedBytes, evicted, blocked: this.blockedSessions() },
        },
        why,
      );
      this.log('warn', { id, bytes: need, err: error }, 'admission refused');
      this.emit('refuse', { id, bytes: need, error });
      throw error;
    };
    for (;;) {
      if (this.state === 'draining' || this.state === 'closed') throw new GuardDrainingError(this.state);
      const m = this.measure();
      const free = this.freeBytes(m).free;
      if (need <= free) break;
      if (m.returningBytes > 0 && need <= free + m.returningBytes && this.monitor) {
        // Disposes already made will make room once NVML shows their memory back: wait for that
        // rather than evict more on a lagging reading (bounded: unseen returns expire).
        await Promise.race([this.monitor.next().catch(() => undefined), delay(this.clock, this.options.returnTimeout)]);
        continue;
      }
      const victim = this.pickVictim();
      if (!victim) {
        const why = need > this.hardBytes ? 'larger than the hard limit' : m.scopeBytes > this.hardBytes ? 'over the hard limit' : 'does not fit';
        refuse(why, m);
      }
      releasedBytes += await this.evictAndWait(victim!, 'admission');
      evicted.push(victim!.id);
    }
    const reservation = new Reservation(
      id,
      need,
      this.clock.now(),
      (r, sessionId, options) => this.commitReservation(r, sessionId, options),
      (r) => {
        this.reservations.delete(r);
      },
    );
    this.reservations.add(reservation);
    const event = { id, bytes: need, waitedMs: this.clock.now() - started, evicted };
    this.log('info', event, 'load admitted');
    this.emit('admit', event);
    return reservation;
  }

  private commitReservation(
    reservation: Reservation,
    id: string,
    options: Omit<SessionOptions, 'bytes'> & { bytes?: ByteSize },
  ): Session {
    if (this.state === 'draining' || this.state === 'closed') {
      this.reservations.delete(reservation);
      throw new GuardDrainingError(this.state);
    }
    const session = new Session(id, { ...options, bytes: options.bytes ?? reservation.bytes }, this.hostFor());
    this.reservations.delete(reservation);
    this.addSession(session);
    return session;
  }

  private async reload(session: Session): Promise<void> {
    if (session.state !== 'evicted') return;
    const transition = (async () => {
      const reservation = await this.admit(session.bytes, { id: session.id });
      // From here the session's own bytes count (a loading session is resident): the reservation
      // hands over in the same turn, so the load is never counted twice.
      session.state = 'loading';
      reservation.cancel();
      try {
        session.reloaded(await session.runLoad());
        session.loads += 1;
        session.state = 'loaded';
        session.lastUsedAt = this.clock.now();
        this.checkLedgerPressure();
      } catch (error) {
        session.state = 'evicted';
        throw error;
      }
    })();
    session.transition = transition;
    try {
      await transition;
    } finally {
      session.transition = undefined;
    }
  }

  // ---------------------------------------------------------------- periodic: pids, trend, recycle

  private schedulePeriodic(): void {
    this.periodic = this.clock.setTimer(() => {
      if (this.state === 'draining' || this.state === 'closed') return;
      try {
        this.tick();
      } finally {
        this.schedulePeriodic();
      }
    }, PERIODIC_MS);
  }

  private tick(): void {
    if (this.scopeOption === 'process-tree') {
      const pids = processTree();
      if (pids.join(',') !== this.treePids.join(',')) {
        this.treePids = pids;
        this.syncWatermarks();
      }
    }
    const m = this.measure();
    const now = this.clock.now();
    if (this.trend && m.source === 'nvml') {
      this.trend.add(now, m.scopeBytes);
      const estimate = this.trend.estimate(this.hardBytes);
      if (
        estimate?.projectedMsToLimit != null &&
        estimate.projectedMsToLimit < this.options.trend!.horizon &&
        now - this.lastTrendAt >= this.options.trend!.window
      ) {
        this.lastTrendAt = now;
        this.leakSuspected = true;
        const event = {
          slopeBytesPerSecond: estimate.slopeBytesPerSecond,
          projectedMsToLimit: estimate.projectedMsToLimit,
          usageBytes: m.scopeBytes,
          hardBytes: this.hardBytes,
          horizonMs: this.options.trend!.horizon,
        };
        this.log('warn', event, 'VRAM usage trending to the hard limit (leak?)');
        this.emit('trend', event);
      }
    }
    const recycle = this.options.recycle;
    if (recycle && this.idle()) {
      if (recycle.every !== null && now - this.lastRecycleAt >= recycle.every) {
        this.lastRecycleAt = now;
        this.emit('recycle', { reason: 'schedule', uptimeMs: now - this.startedAt, detail: `every ${recycle.every} ms` });
      } else if (recycle.onLeak && this.leakSuspected) {
        this.leakSuspected = false;
        this.lastRecycleAt = now;
        this.emit('recycle', { reason: 'leak', uptimeMs: now - this.startedAt, detail: 'usage trending to the hard limit' });
      }
    }
    this.updateEpisodes(m.reliefBytes);
    if (m.reliefBytes > this.softBytes && !this.relieving) void this.relieve('periodic');
  }

  private idle(): boolean {
    if (this.reservations.size > 0) return false;
    for (const s of this.sessionMap.values()) if (s.busy > 0 || s.state === 'loading') return false;
    return true;
  }

  // ---------------------------------------------------------------- lifecycle

  private becomeReady(): void {
    if (this.state === 'starting') this.state = 'ready';
  }

  private async drainNow(): Promise<void> {
    this.state = 'draining';
    this.log('info', { sessions: this.sessionMap.size }, 'draining');
    await this.admissionQueue.catch(() => undefined);
    const sessions = [...this.sessionMap.values()];
    await Promise.race([
      Promise.all(sessions.map((s) => s.whenIdle())),
      delay(this.clock, this.options.drainTimeout),
    ]);
    await Promise.all(
      sessions.map(async (s) => {
        if (s.transition) await s.transition.catch(() => undefined);
        await this.evict(s, 'drain');
        s.cancelIdleTimer();
      }),
    );
    for (const r of this.reservations) r.cancel();
    this.periodic?.cancel();
    for (const w of this.watermarks) w.remove();
    this.watermarks = [];
    if (this.ownsMonitor) this.monitor?.close();
    this.log('info', {}, 'drained');
  }

  private uninstallShutdownHandlers(): void {
    for (const [signal, handler] of this.shutdownHandlers) process.off(signal, handler);
    this.shutdownHandlers = [];
  }

  private log(level: 'debug' | 'info' | 'warn' | 'error', obj: object, msg: string): void {
    const logger = this.logger;
    if (!logger) return;
    const fn = logger[level];
    if (typeof fn === 'function') fn.call(logger, { component: 'vramguard', ...obj }, msg);
  }
}

class TimeoutError extends Error {}

/** guard.sessions: register, use, unload. */
export class SessionRegistry implements Iterable<Session> {
  constructor(private readonly guard: VramGuard) {}

  /** Registers a loaded model. Throws when the id is taken. */
  register(id: string, options: SessionOptions): Session {
    const session = new Session(id, options, this.guard.hostFor());
    this.guard.addSession(session);
    return session;
  }

  get(id: string): Session | undefined {
    return this.guard.sessionById(id);
  }

  has(id: string): boolean {
    return this.guard.sessionById(id) !== undefined;
  }

  /** Runs fn on the session (reloading it through admission when evicted and it has `load`). */
  use<T>(id: string, fn: (session: Session) => T | Promise<T>): Promise<T> {
    const session = this.guard.sessionById(id);
    if (!session) return Promise.reject(new InvalidOptionError('id', `no session named ${id}`));
    return session.use(() => fn(session));
  }

  /** Waits for the session's uses to end, then disposes it (even if pinned). Resolves false if it was not loaded. */
  async unload(id: string): Promise<boolean> {
    const session = this.guard.sessionById(id);
    if (!session) return false;
    // A use may start while we wait: check again after every wait, then evict in the same turn.
    while (session.busy > 0 || session.transition) {
      await session.whenIdle();
      if (session.transition) await session.transition.catch(() => undefined);
    }
    return this.guard.evict(session, 'unload');
  }

  async unloadAll(): Promise<void> {
    await Promise.all(this.list().map((s) => this.unload(s.id)));
  }

  /** Unloads and forgets the session. */
  async delete(id: string): Promise<boolean> {
    const session = this.guard.sessionById(id);
    if (!session) return false;
    await this.unload(id);
    this.guard.removeSession(session);
    return true;
  }

  list(): SessionInfo[] {
    return this.guard.allSessions().map((s) => s.info());
  }

  [Symbol.iterator](): Iterator<Session> {
    return this.guard.allSessions()[Symbol.iterator]();
  }
}
