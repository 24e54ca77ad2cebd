// Library-mode metrics: `guard.metrics(registry)` puts GPU and guard metrics on a prom-client Registry
// the host server owns. Same naming as `vramguard serve`. Several guards (one per GPU) can share a
// registry; registering the same guard twice on it is a no-op. Nothing touches prom-client's global
// default registry unless it is the registry given.
import type { Counter, Histogram, Registry } from 'prom-client';

import type { GuardEvents, GuardHealth, GuardStatus } from '../guard/types';
import type { SessionInfo } from '../guard/sessions';
import type { Snapshot, SystemInfo } from '../types';
import { ExporterState, registerGpuMetrics } from './gpu';
import { promClient } from './prom';

/** What the metrics read of a guard: a narrow view (GuardMetricsSource is one), never the class itself. */
export interface GuardMetricsSource {
  readonly deviceIndex: number;
  readonly softBytes: number;
  readonly hardBytes: number;
  readonly targetBytes: number;
  readonly intervalMs: number;
  /** The guard's name on the node (option node), a label on its series; null without node coordination. */
  readonly participant: string | null;
  readonly nvmlSystem: SystemInfo | null;
  readonly sessions: { list(): SessionInfo[] };
  status(): GuardStatus;
  health(): GuardHealth;
  latestSnapshot(): Snapshot | null;
  on<K extends keyof GuardEvents>(event: K, listener: (...args: GuardEvents[K]) => void): unknown;
  /** Calls listener after every sampling pass (when the guard samples NVML itself); returns a remover. */
  observeSamples(listener: (snapshot: Snapshot) => void): () => void;
}

export interface GuardMetricsOptions {
  /** Per-process GPU series (pid, command labels). Default false: their cardinality is the host's call. */
  processes?: boolean;
  /**
   * Per-session keep-alive gauges (session label: idle TTL, predicted next use). Default true; turn
   * off when session ids are unbounded.
   */
  sessions?: boolean;
}

const SESSION_STATES = ['idle', 'busy', 'loading', 'evicting', 'evicted'] as const;
const HEALTH_STATES = ['starting', 'ready', 'draining', 'closed'] as const;
/** Reaction buckets, seconds: a crossing is seen within one sampling interval (10 ms to 1 s). */
const REACTION_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];

/** One set of metric objects per registry, reading every guard registered on it. */
class RegistryMetrics {
  readonly guards = new Set<GuardMetricsSource>();
  private readonly gpuState: ExporterState;
  private readonly evictions: Counter<'gpu' | 'participant' | 'reason'>;
  private readonly disposeFailures: Counter<'gpu' | 'participant'>;
  private readonly releaserCalls: Counter<'gpu' | 'participant' | 'releaser'>;
  private readonly releaserFailures: Counter<'gpu' | 'participant' | 'releaser'>;
  private readonly admissions: Counter<'gpu' | 'participant'>;
  private readonly refusals: Counter<'gpu' | 'participant'>;
  private readonly pressure: Counter<'gpu' | 'participant'>;
  private readonly breaches: Counter<'gpu' | 'participant'>;
  private readonly trends: Counter<'gpu' | 'participant'>;
  private readonly loads: Counter<'gpu' | 'participant'>;
  private readonly prewarms: Counter<'gpu' | 'participant'>;
  private readonly reaction: Histogram<'gpu' | 'participant'>;

  constructor(registry: Registry, options: GuardMetricsOptions) {
    const { Counter, Gauge, Histogram } = promClient();
    const registers = [registry];
    const guards = this.guards;
    const labels = guardLabels;
    // GPU gauges read every guard's latest snapshot (each guard samples only its own GPU).
    const source = {
      latest: (): Snapshot | null => {
        const snapshots = [...guards].map((g) => g.latestSnapshot()).filter((s): s is Snapshot => s !== null);
        if (snapshots.length === 0) return null;
        if (snapshots.length === 1) return snapshots[0]!;
        return {
          sequence: snapshots.reduce((sum, s) => sum + s.sequence, 0),
          timestamp: Math.min(...snapshots.map((s) => s.timestamp)),
          passDurationMs: Math.max(...snapshots.map((s) => s.passDurationMs)),
          devices: snapshots.flatMap((s) => s.devices).sort((a, b) => a.index - b.index),
        };
      },
    };
    const firstSystem = (): SystemInfo | null => {
      for (const g of guards) if (g.nvmlSystem) return g.nvmlSystem;
      return null;
    };
    const intervalMs = () => Math.min(...[...guards].map((g) => g.intervalMs));
    this.gpuState = new ExporterState(source, firstSystem, { processes: options.processes ?? false, intervalMs });
    registerGpuMetrics(registry, this.gpuState);

    const perGuard = (name: string, help: string, read: (g: GuardMetricsSource) => number | null) =>
      new Gauge({
        name,
        help,
        labelNames: ['gpu', 'participant'],
        registers,
        collect() {
          this.reset();
          for (const g of guards) {
            const value = read(g);
            if (value !== null) this.set(labels(g), value);
          }
        },
      });
    perGuard('vramguard_guard_scope_used_bytes', 'GPU memory the guarded scope uses (NVML, or the ledger without NVML), in bytes.', (g) =>
      g.status().usage.scopeBytes,
    );
    perGuard('vramguard_guard_reserved_bytes', 'Admitted loads not yet committed, in bytes.', (g) => g.status().usage.reservedBytes);
    perGuard('vramguard_guard_free_bytes', 'What an admission could get now, in bytes (may be negative over the hard limit).', (g) =>
      g.status().usage.freeBytes,
    );
    perGuard('vramguard_guard_node_free_bytes', "What the node's other participants leave this guard now (option node), in bytes.", (g) =>
      g.participant === null ? null : (g.status().node?.freeBytes ?? null),
    );
    perGuard('vramguard_guard_node_participants', 'Processes in the node ledger of this GPU, this one included (option node).', (g) =>
      g.participant === null ? null : (g.status().node?.participants.length ?? null),
    );
    perGuard('vramguard_guard_ledger_bytes', "Declared bytes of the resident sessions, in bytes.", (g) => g.status().usage.ledgerBytes);
    new Gauge({
      name: 'vramguard_guard_quota_bytes',
      help: 'The quota: soft and hard limits and the relief target, in bytes.',
      labelNames: ['gpu', 'participant', 'limit'],
      registers,
      collect() {
        this.reset();
        for (const g of guards) {
          this.set({ ...labels(g), limit: 'soft' }, g.softBytes);
          this.set({ ...labels(g), limit: 'hard' }, g.hardBytes);
          this.set({ ...labels(g), limit: 'target' }, g.targetBytes);
        }
      },
    });
    new Gauge({
      name: 'vramguard_guard_sessions',
      help: 'Sessions by state (idle and busy are loaded).',
      labelNames: ['gpu', 'participant', 'state'],
      registers,
      collect() {
        this.reset();
        for (const g of guards) {
          const counts = Object.fromEntries(SESSION_STATES.map((s) => [s, 0])) as Record<(typeof SESSION_STATES)[number], number>;
          for (const s of g.sessions.list()) {
            if (s.state === 'loaded') counts[s.busy > 0 ? 'busy' : 'idle'] += 1;
            else if (s.state !== 'removed') counts[s.state] += 1;
          }
          for (const state of SESSION_STATES) this.set({ ...labels(g), state }, counts[state]);
        }
      },
    });
    new Gauge({
      name: 'vramguard_guard_state',
      help: "The guard's health state: 1 for the current one.",
      labelNames: ['gpu', 'participant', 'state'],
      registers,
      collect() {
        this.reset();
        for (const g of guards) {
          const current = g.health().state;
          for (const state of HEALTH_STATES) this.set({ ...labels(g), state }, state === current ? 1 : 0);
        }
      },
    });
    new Gauge({
      name: 'vramguard_guard_scope_info',
      help: 'The scope asked for and the one in force (device when per-process accounting is impossible; ledger without NVML); always 1.',
      labelNames: ['gpu', 'participant', 'requested', 'in_force'],
      registers,
      collect() {
        this.reset();
        for (const g of guards) {
          const { scope } = g.status();
          this.set({ ...labels(g), requested: scope.requested, in_force: scope.inForce }, 1);
        }
      },
    });

    // Keep-alive: the load forecast and its measured error (guards with keepAlive), per-session TTLs.
    const forecast = (g: GuardMetricsSource) => g.status().keepAlive.forecast;
    perGuard('vramguard_guard_forecast_bytes', 'Scope usage forecast at the horizon (least squares over the last 10 minutes), in bytes.', (g) =>
      forecast(g)?.predictedBytes ?? null,
    );
    perGuard('vramguard_guard_forecast_horizon_seconds', 'How far ahead the load forecast looks, in seconds.', (g) => {
      const f = forecast(g);
      return f ? f.horizonMs / 1000 : null;
    });
    perGuard('vramguard_guard_forecast_abs_error_bytes', 'Mean absolute error of the load forecasts whose horizon came, in bytes.', (g) =>
      forecast(g)?.accuracy.meanAbsErrorBytes ?? null,
    );
    perGuard('vramguard_guard_forecast_error_bytes', 'Mean signed error (forecast minus actual: the bias) of the load forecasts whose horizon came, in bytes.', (g) =>
      forecast(g)?.accuracy.meanErrorBytes ?? null,
    );
    if (options.sessions ?? true) {
      const perSession = (name: string, help: string, read: (s: SessionInfo) => number | null) =>
        new Gauge({
          name,
          help,
          labelNames: ['gpu', 'participant', 'session'],
          registers,
          collect() {
            this.reset();
            for (const g of guards) {
              for (const s of g.sessions.list()) {
                const value = s.state === 'removed' ? null : read(s);
                if (value !== null) this.set({ ...labels(g), session: s.id }, value);
              }
            }
          },
        });
      perSession('vramguard_guard_session_idle_ttl_seconds', 'The idle TTL in force for the session (adaptive or fixed), in seconds.', (s) =>
        s.keepAlive.ttlMs === null ? null : s.keepAlive.ttlMs / 1000,
      );
      perSession('vramguard_guard_session_next_use_seconds', "Time to the session's predicted next use (adaptive sessions with history), in seconds.", (s) =>
        s.keepAlive.predictedNextUseInMs === null ? null : s.keepAlive.predictedNextUseInMs / 1000,
      );
    }

    const counter = <L extends string>(name: string, help: string, labelNames: L[]) =>
      new Counter<L>({ name, help, labelNames, registers });
    this.evictions = counter('vramguard_guard_evictions_total', 'Sessions the guard disposed, by reason (idle, pressure, admission, prewarm, relief, unload, drain, parent, external).', ['gpu', 'participant', 'reason']);
    this.disposeFailures = counter('vramguard_guard_dispose_failures_total', 'Disposes that threw or timed out.', ['gpu', 'participant']);
    this.releaserCalls = counter('vramguard_guard_releaser_calls_total', 'Cache releaser calls.', ['gpu', 'participant', 'releaser']);
    this.releaserFailures = counter('vramguard_guard_releaser_failures_total', 'Cache releaser calls that threw or timed out.', ['gpu', 'participant', 'releaser']);
    this.admissions = counter('vramguard_guard_admissions_total', 'Loads admitted.', ['gpu', 'participant']);
    this.refusals = counter('vramguard_guard_admissions_refused_total', 'Loads refused (VramQuotaError).', ['gpu', 'participant']);
    this.pressure = counter('vramguard_guard_pressure_episodes_total', 'Times usage went over the soft limit.', ['gpu', 'participant']);
    this.breaches = counter('vramguard_guard_breaches_total', 'Times usage went over the hard limit.', ['gpu', 'participant']);
    this.trends = counter('vramguard_guard_trend_warnings_total', 'Leak warnings: usage projected to reach the hard limit within the horizon.', ['gpu', 'participant']);
    this.loads = counter('vramguard_guard_session_loads_total', 'Session loads through the guard (reloads for a use and pre-warms).', ['gpu', 'participant']);
    this.prewarms = counter('vramguard_guard_prewarms_total', 'Sessions loaded ahead of a predicted use (keepAlive.prewarm).', ['gpu', 'participant']);
    this.reaction = new Histogram({
      name: 'vramguard_guard_reaction_seconds',
      help: 'From the sample that crossed the soft limit to the first releaser call, in seconds.',
      labelNames: ['gpu', 'participant'],
      buckets: REACTION_BUCKETS,
      registers,
    });
  }

  add(guard: GuardMetricsSource): void {
    if (this.guards.has(guard)) return;
    this.guards.add(guard);
    const gpu = guardLabels(guard);
    guard.on('evict', (e) => {
      this.evictions.inc({ ...gpu, reason: e.reason });
      if (e.error) this.disposeFailures.inc(gpu);
    });
    guard.on('release', (e) => {
      this.releaserCalls.inc({ ...gpu, releaser: e.name });
      if (e.error) this.releaserFailures.inc({ ...gpu, releaser: e.name });
      if (e.reactionMs !== null) this.reaction.observe(gpu, e.reactionMs / 1000);
    });
    guard.on('admit', () => this.admissions.inc(gpu));
    guard.on('refuse', () => this.refusals.inc(gpu));
    guard.on('pressure', () => this.pressure.inc(gpu));
    guard.on('breach', () => this.breaches.inc(gpu));
    guard.on('trend', () => this.trends.inc(gpu));
    guard.on('load', (e) => {
      this.loads.inc(gpu);
      if (e.prewarm) this.prewarms.inc(gpu);
    });
    // Counters of failed NVML readings see every pass.
    guard.observeSamples(() => {
      const snapshot = this.gpuState.sampler.latest();
      if (snapshot) this.gpuState.observe(snapshot);
    });
    // Zero-valued series from the start, so rate() works from the first scrape.
    this.admissions.inc(gpu, 0);
    this.refusals.inc(gpu, 0);
    this.pressure.inc(gpu, 0);
    this.breaches.inc(gpu, 0);
    this.loads.inc(gpu, 0);
    this.prewarms.inc(gpu, 0);
  }
}

/** A guard's labels: its GPU, and its participant name when it coordinates with the node. */
function guardLabels(guard: GuardMetricsSource): { gpu: string; participant?: string } {
  return guard.participant === null ? { gpu: String(guard.deviceIndex) } : { gpu: String(guard.deviceIndex), participant: guard.participant };
}

const perRegistry = new WeakMap<Registry, RegistryMetrics>();

/** Registers `guard`'s GPU and guard metrics on `registry` (see README, "Metrics in your server"). */
export function registerGuardMetrics(registry: Registry, guard: GuardMetricsSource, options: GuardMetricsOptions = {}): void {
  let metrics = perRegistry.get(registry);
  if (!metrics) {
    metrics = new RegistryMetrics(registry, options);
    perRegistry.set(registry, metrics);
  }
  metrics.add(guard);
}
