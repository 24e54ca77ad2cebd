// VramGuard: per-process VRAM quotas on one GPU, a thin façade over its parts. The meter says what the
// scope uses; the ledger holds sessions and reservations and says what is free; the planner decides
// (victims, admit/wait/evict/refuse); the evictor disposes; admission queues loads; relief answers
// pressure; the periodic tick watches trends; the lifecycle drains. See the README, "How it decides".
import { EventEmitter } from 'node:events';

import type { Registry } from 'prom-client';

import { type GuardMetricsOptions, registerGuardMetrics } from '../metrics/guard';
import { InvalidOptionError } from '../errors';
import { checkOptionKeys } from '../option-keys';
import { Sampler } from '../sampler';
import type { Snapshot, SystemInfo } from '../types';
import { type ByteSize, parseBytes } from '../units';
import { Admission } from './admission';
import { type Clock, systemClock } from './clock';
import { Evictor } from './evictor';
import { Growth } from './growth';
import { KeepAlive } from './keepalive';
import { Ledger, type Reservation } from './ledger';
import { Lifecycle, type DrainSteps, type ShutdownOptions } from './lifecycle';
import { Meter } from './meter';
import { NodeParticipation } from './node';
import { type GuardOptions, type ResolvedOptions, resolveOptions, validateScope } from './options';
import { Periodic, PERIODIC_MS } from './periodic';
import { SessionRegistry } from './registry';
import { Relief } from './relief';
import { Reporter } from './reporter';
import { openMonitor, resolveLimits } from './setup';
import { Session, type SessionHost } from './sessions';
import type { GuardEvents, GuardHealth, GuardMonitor, GuardStatus } from './types';
import { WatermarkSubscription } from './watermarks';

/** How many returnTimeouts a dispose's bytes count as returned before NVML shows them. */
const CREDIT_TIMEOUTS = 3;

const GUARD_OPTION_KEYS = [
  'device', 'quota', 'scope', 'interval', 'idleTtl', 'hysteresis', 'padding', 'returnRatio', 'returnTimeout',
  'disposeTimeout', 'releaserTimeout', 'drainTimeout', 'trend', 'recycle', 'keepAlive', 'logger', 'libraryPath', 'node', 'monitor', 'clock',
] as const;

function checkGuardOptionKeys(options: GuardOptions): void {
  checkOptionKeys(options, GUARD_OPTION_KEYS);
  checkOptionKeys(options.quota, ['soft', 'hard'], 'quota.');
  checkOptionKeys(options.trend, ['window', 'horizon'], 'trend.');
  checkOptionKeys(options.recycle, ['every', 'onLeak'], 'recycle.');
  // keepAlive's keys are checked where it is resolved (demand/options.ts).
  if (typeof options.scope === 'object') checkOptionKeys(options.scope, ['pids'], 'scope.');
}

export class VramGuard extends EventEmitter<GuardEvents> {
  readonly softBytes: number;
  readonly hardBytes: number;
  readonly targetBytes: number;
  readonly deviceIndex: number;
  readonly sessions: SessionRegistry;
  private readonly options: ResolvedOptions;
  private readonly clock: Clock;
  private readonly monitor: GuardMonitor | null;
  private readonly report: Reporter;
  private readonly ledger = new Ledger();
  private readonly lifecycle: Lifecycle;
  private readonly meter: Meter;
  private readonly evictor: Evictor;
  private readonly admission: Admission;
  private readonly relief: Relief;
  private readonly periodic: Periodic;
  private readonly keepAlive: KeepAlive;
  private readonly watermarks: WatermarkSubscription | null;
  private readonly drainSteps: DrainSteps;
  private readonly host: SessionHost;
  private readonly node: NodeParticipation | null;
  private deviceLost = false;

  constructor(options: GuardOptions & { monitor?: GuardMonitor; clock?: Clock } = {}) {
    super();
    checkGuardOptionKeys(options);
    this.options = resolveOptions(options);
    const scope = validateScope(options.scope);
    const clock = (this.clock = options.clock ?? systemClock);
    const setup = openMonitor({ device: options.device, monitor: options.monitor, libraryPath: options.libraryPath, intervalMs: this.options.interval });
    const monitor = (this.monitor = setup.monitor);
    this.deviceIndex = setup.deviceIndex;
    const limits = { ...resolveLimitsOrClose(options, setup) };
    ({ softBytes: this.softBytes, hardBytes: this.hardBytes, targetBytes: this.targetBytes } = limits);

    const report = (this.report = new Reporter((event, payload) => (this.emit as (e: string, p: unknown) => boolean)(event, payload), options.logger));
    const ledger = this.ledger;
    const lifecycle = (this.lifecycle = new Lifecycle(clock, report, this.options.drainTimeout));
    this.watermarks = monitor ? new WatermarkSubscription(monitor, this.deviceIndex, [limits.softBytes, limits.hardBytes], setup.migUuid) : null;
    const meter = (this.meter = new Meter(
      scope,
      {
        monitor,
        deviceIndex: this.deviceIndex,
        migUuid: setup.migUuid,
        nvmlReason: setup.nvmlReason,
        clock,
        deviceLost: () => this.deviceLost,
        ledgerBytes: () => ledger.residentBytes(),
        reservedBytes: () => ledger.reservedBytes(),
      },
      {
        returnRatio: this.options.returnRatio,
        creditMs: CREDIT_TIMEOUTS * this.options.returnTimeout,
        onScopeChange: () => this.syncWatermarks(),
        onFallback: (problem) => report.log('warn', { problem }, 'per-process accounting unavailable: using device scope'),
      },
    ));
    const evictor = (this.evictor = new Evictor(meter, clock, report, this.options));
    const victims = (now: number) => this.keepAlive.views(now);
    const common = { meter, ledger, evictor, lifecycle, report, clock, limits, victims };
    const relief = (this.relief = new Relief({
      ...common,
      releaserTimeout: this.options.releaserTimeout,
      returnTimeout: this.options.returnTimeout,
      onLedger: () => !monitor || this.deviceLost,
    }));
    const keepAlive = (this.keepAlive = new KeepAlive({
      options: this.options.keepAlive,
      meter,
      ledger,
      relief,
      lifecycle,
      report,
      clock,
      limits,
      paddingBytes: this.options.padding,
      tickMs: PERIODIC_MS,
    }));
    const node = (this.node = this.options.node
      ? new NodeParticipation({ option: this.options.node, meter, ledger, relief, report, paddingBytes: this.options.padding, hardBytes: limits.hardBytes })
      : null);
    if (node) {
      if (!monitor) {
        throw new InvalidOptionError('node', `node-wide coordination needs NVML to identify the GPU, but it is unavailable (${setup.nvmlReason ?? 'unknown'})`);
      }
      ledger.addConstraint(node.constraint);
    }
    this.host = {
      now: () => clock.now(),
      keepAliveFor: (id, sessionOptions, fallbackMs) => keepAlive.sessionKeepAlive(id, sessionOptions, fallbackMs),
      decideTtl: (k) => keepAlive.decideTtl(k),
      setTimer: (fn, ms) => clock.setTimer(fn, ms),
      defaultIdleTtlMs: this.options.idleTtl,
      assertAcceptingUses: () => lifecycle.assertAccepting(),
      evict: (session, reason) => evictor.evict(session, reason),
      reload: (session) => this.admission.reload(session, (bytes, id) => this.admit(bytes, { id })),
      useEnded: () => relief.checkLedger(),
      find: (id) => ledger.get(id),
      resize: (session, bytes) => growth.resize(session, bytes),
      markEvicted: (session) => evictor.markEvicted(session),
    };
    const growth = new Growth({ ledger, clock, victims: (now) => keepAlive.views(now), meter, relief, report, limits, paddingBytes: this.options.padding });
    const createSession = (id: string, sessionOptions: ConstructorParameters<typeof Session>[1]) => new Session(id, sessionOptions, this.host);
    const addSession = (session: Session) => {
      ledger.add(session);
      relief.checkLedger();
    };
    this.admission = new Admission({
      ...common,
      paddingBytes: this.options.padding,
      returnTimeout: this.options.returnTimeout,
      sampling: monitor !== null,
      growth,
      createSession,
      addSession,
      loaded: (session, durationMs, prewarm) => {
        keepAlive.loaded(session, durationMs, prewarm);
        relief.checkLedger();
      },
      node,
      relieve: () => void relief.relieve('growth'),
    });
    keepAlive.attach(this.admission);
    this.periodic = new Periodic({ ...common, relief, keepAlive, trend: this.options.trend, recycle: this.options.recycle, startedAt: clock.now() });
    this.sessions = new SessionRegistry({ ledger, createSession, addSession, evict: (s, reason) => evictor.evict(s, reason) });
    this.drainSteps = {
      admissionsSettled: () => this.admission.settled(),
      sessions: () => ledger.all(),
      evict: (s) => evictor.evict(s, 'drain'),
      cancelReservations: () => ledger.cancelReservations(),
      stop: () => {
        this.periodic.stop();
        this.watermarks?.removeAll();
        if (setup.ownsMonitor) monitor?.close();
        node?.close().catch((error: Error) => report.log('error', { err: error }, 'leaving the node ledger failed'));
      },
    };

    if (monitor) {
      monitor.on('watermark', (crossing) => {
        meter.advance();
        relief.onCrossing(crossing);
      });
      monitor.on('device-lost', (event) => {
        if (event.device !== this.deviceIndex) return;
        this.deviceLost = true;
        report.log('error', { device: event.device, reason: event.reason }, 'GPU lost: running on the ledger until it returns');
        report.emit('device-lost', event);
      });
      monitor.on('device-recovered', (event) => {
        if (event.device !== this.deviceIndex) return;
        this.deviceLost = false;
        report.log('info', { device: event.device }, 'GPU back');
        report.emit('device-recovered', { device: event.device });
      });
      this.syncWatermarks();
      const ready = () => {
        meter.advance();
        const device = meter.device();
        node?.join(device?.uuid ?? null, device?.memoryTotalBytes ?? null).catch(() => undefined);
        lifecycle.becomeReady();
      };
      if (monitor.latest()) ready();
      else monitor.next().then(ready, () => undefined);
    } else {
      report.log('warn', { reason: setup.nvmlReason }, 'NVML unavailable: the guard runs on its ledger (declared session bytes)');
      lifecycle.becomeReady();
    }
    this.periodic.start();
  }

  // ---------------------------------------------------------------- public API

  /**
   * Registers a cache releaser, called at the soft limit before any eviction (lower priority first). It
   * may resolve to the bytes it freed (see Relief.addReleaser): relief counts them.
   */
  addReleaser(name: string, fn: () => unknown, options: { priority?: number } = {}): () => void {
    return this.relief.addReleaser(name, fn, options);
  }

  /**
   * Reserves bytes for a load. Evicts idle sessions to make room; throws VramQuotaError (with the
   * figures) when it cannot fit, before evicting anything when even evicting every idle session would
   * not make room. Admissions are serialized: concurrent calls never double-book.
   */
  admit(bytes: ByteSize, options: { id?: string } = {}): Promise<Reservation> {
    return this.admission.admit(parseBytes(bytes, 'bytes'), options.id);
  }

  /** A pure read: changes nothing. */
  health(): GuardHealth {
    const m = this.meter.read();
    const age = this.sampleAgeMs();
    const fresh = this.monitor === null || (age !== null && age <= Math.max(3 * this.options.interval, 2000));
    const state = this.lifecycle.state;
    return {
      state,
      ok: state === 'ready' && fresh && !this.deviceLost,
      sampleAgeMs: age,
      deviceLost: this.deviceLost,
      usageBytes: m.scopeBytes,
      hardBytes: this.hardBytes,
      source: m.source,
    };
  }

  /** A pure read: changes nothing (scrapes call it as often as they like). */
  status(): GuardStatus {
    const m = this.meter.read();
    const device = m.device ?? this.meter.device();
    const scope = this.meter.scope;
    return {
      state: this.lifecycle.state,
      device: { index: this.deviceIndex, uuid: device?.uuid ?? null, name: device?.name ?? null, lost: this.deviceLost },
      usage: {
        scopeBytes: m.scopeBytes,
        source: m.source,
        deviceUsedBytes: device?.memoryUsedBytes ?? null,
        deviceTotalBytes: device?.memoryTotalBytes ?? null,
        deviceFreeBytes: device?.memoryFreeBytes ?? null,
        ledgerBytes: this.ledger.residentBytes(),
        returningBytes: m.returningBytes,
        reservedBytes: this.ledger.reservedBytes(),
        freeBytes: this.ledger.free(m, { hardBytes: this.hardBytes, paddingBytes: this.options.padding }).free,
      },
      quota: { softBytes: this.softBytes, hardBytes: this.hardBytes, targetBytes: this.targetBytes },
      scope: { requested: typeof scope === 'string' ? scope : 'pids', inForce: m.inForce, reason: m.reason, pids: this.meter.pids() },
      sessions: this.ledger.all().map((s) => s.info()),
      reservations: this.ledger.reservationList(this.clock.now()),
      keepAlive: this.keepAlive.status(this.clock.now()),
      sampleAgeMs: this.sampleAgeMs(),
      node: this.node?.status() ?? null,
    };
  }

  /**
   * Refuses admissions, waits (up to drainTimeout) for in-flight uses, disposes every session and
   * stops sampling. Idempotent.
   */
  drain(): Promise<void> {
    return this.lifecycle.drain(this.drainSteps);
  }

  /** Drains, then releases everything; the guard cannot be used again. */
  close(): Promise<void> {
    return this.lifecycle.close(this.drainSteps);
  }

  /**
   * SIGTERM/SIGINT run onSignal at once (stop accepting connections there) while the guard drains and
   * closes, then onShutdown (close what is left), then exit with exitCode (default 0; false: do not
   * exit). A second signal exits at once with 1. Returns an uninstaller.
   */
  installShutdownHandlers(options: ShutdownOptions = {}): () => void {
    return this.lifecycle.installShutdownHandlers(this.drainSteps, options);
  }

  /** The latest snapshot of this guard's GPU (no NVML call); null without NVML or before the first pass. */
  latestSnapshot(): Snapshot | null {
    return this.monitor?.latest() ?? null;
  }

  /** Driver, NVML and CUDA versions, when the guard samples NVML itself. */
  get nvmlSystem(): SystemInfo | null {
    return this.monitor instanceof Sampler ? (this.monitor.system ?? null) : null;
  }

  /** This guard's name on the node (option node), null without node-wide coordination. */
  get participant(): string | null {
    return this.options.node?.name ?? null;
  }

  /** Sampling interval in milliseconds. */
  get intervalMs(): number {
    return this.options.interval;
  }

  /**
   * Registers this guard's GPU and guard metrics on a prom-client Registry you own (never the global
   * default one unless you pass it). Several guards may share a registry; registering twice is a no-op.
   * prom-client is loaded on the first call, not before.
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

  private syncWatermarks(): void {
    if (this.lifecycle && !this.lifecycle.accepting) return;
    this.watermarks?.sync(this.meter.watermarkPids());
  }

  private sampleAgeMs(): number | null {
    const device = this.meter.device();
    return device ? Math.max(0, Date.now() - device.sampledAt) : null;
  }
}

/** resolveLimits, closing the monitor the guard opened when the quota is bad. */
function resolveLimitsOrClose(options: GuardOptions, setup: ReturnType<typeof openMonitor>) {
  try {
    return resolveLimits(options, setup.totalBytes, setup.nvmlReason);
  } catch (error) {
    if (setup.ownsMonitor) setup.monitor?.close();
    throw error;
  }
}
