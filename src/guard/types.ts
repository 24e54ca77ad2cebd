// The guard's vocabulary: what it needs from a monitor, its events, its status and health, and what a
// measurement of the scope is. Types only: every part imports these, none imports the façade.
import type { NodeShareError, NvmlReason } from '../errors';
import type { NodeStatus } from './node';
import type { WatermarkSpec } from '../sampler';
import type { ForecastAccuracy } from './demand/forecast';
import type { DeviceSample, Snapshot } from '../types';
import type { ByteSize } from '../units';
import type { EvictReason, SessionInfo } from './sessions';

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
  /** 'growth': a commit above its reservation or a resize crossed the soft limit. */
  trigger: 'watermark' | 'periodic' | 'ledger' | 'growth';
}
export interface ReleaseEvent {
  name: string;
  priority: number;
  durationMs: number;
  usageBeforeBytes: number;
  usageAfterBytes: number;
  /** From the sample that saw the crossing to this releaser's call (first releaser of a relief). */
  reactionMs: number | null;
  /** What the releaser said it freed (it may return a byte count); null when it returned none. */
  freedBytes: number | null;
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
/** A session loaded through the guard: reloaded for a use, or pre-warmed ahead of a predicted one. */
export interface LoadEvent {
  id: string;
  bytes: number;
  /** From the call of its load() to its settling (the admission's wait excluded). */
  durationMs: number;
  prewarm: boolean;
}
/** A session's memory grew after admission: a commit above its reservation or a resize. */
export interface GrowEvent {
  id: string;
  kind: 'commit' | 'resize';
  /** The reservation (commit) or the session's bytes before (resize). */
  fromBytes: number;
  toBytes: number;
  /** Scope usage and free memory once the growth is on the books. */
  usageAfterBytes: number;
  freeAfterBytes: number;
  /** 'relieve': accepted, over the soft limit: relief runs; 'refused': VramQuotaError thrown, nothing booked. */
  outcome: 'accepted' | 'relieve' | 'refused';
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
  load: [LoadEvent];
  /** This process holds more than its share of the node's policy file (at start, or as usage grows). */
  'over-share': [NodeShareError];
  grow: [GrowEvent];
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
  keepAlive: GuardKeepAliveStatus;
  sampleAgeMs: number | null;
  /** The node-wide view (option `node`): this process's room on the node and every participant; null without it. */
  node: NodeStatus | null;
}

/** status().keepAlive: the guard's keep-alive settings, its load forecast and its last pre-warm. */
export interface GuardKeepAliveStatus {
  adaptive: boolean;
  prewarm: { minUses: number; allowEviction: boolean } | false;
  /** Null without keepAlive (or with forecast: false). */
  forecast: {
    /** Scope usage forecast at now + horizonMs; null until the window holds 3 buckets. */
    predictedBytes: number | null;
    horizonMs: number;
    slopeBytesPerSecond: number | null;
    /** Past forecasts against the usage read when their horizon came. */
    accuracy: ForecastAccuracy;
  } | null;
  lastPrewarm: { id: string; at: number; nextUseInMs: number; reloadMs: number; evict: string[] } | null;
}

/** One reading of the scope (see Meter.read()). */
export interface Measurement {
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

/** The limits every part decides against, in bytes. */
export interface Limits {
  softBytes: number;
  hardBytes: number;
  targetBytes: number;
}
