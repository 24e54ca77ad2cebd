// The guard's options: defaults, parsing and validation. Every bad value fails at construction with
// one message naming the option.
import { InvalidOptionError } from '../errors';
import { type ByteSize, type Duration, parseBytes, parseDuration } from '../units';
import { type KeepAliveOptions, type ResolvedKeepAlive, resolveKeepAlive } from './demand/options';
import { checkParticipantName, readPolicy } from '../node-ledger';
import { checkOptionKeys } from '../option-keys';
import type { ScopeOption } from './scope';

/** A size, or a percentage of the device's total memory ('90%'). */
export type QuotaSize = ByteSize;

export interface Logger {
  debug?(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

export interface GuardOptions {
  /** Device index or UUID. Default 0. */
  device?: number | string;
  /** Default { soft: '85%', hard: '95%' } of the device (needs NVML for percentages). */
  quota?: { soft?: QuotaSize; hard: QuotaSize };
  /** Default 'process-tree': this pid and its descendants. */
  scope?: ScopeOption;
  /** Sampling interval, default '100ms'. */
  interval?: Duration;
  /** Idle sessions are evicted this long after their last use ended; null: never. Default '5m'. */
  idleTtl?: Duration | null;
  /** Relief stops below soft minus this. Default 5% of soft. */
  hysteresis?: QuotaSize;
  /** Kept free on the device beyond the quota, for the driver and other processes. Default '256MiB'. */
  padding?: ByteSize;
  /** After a dispose, wait until this share of its bytes came back... Default 0.75. */
  returnRatio?: number;
  /** ...or this long. Default '5s'. */
  returnTimeout?: Duration;
  /** A dispose or releaser that runs longer is reported and left behind. Default '10s' / '5s'. */
  disposeTimeout?: Duration;
  releaserTimeout?: Duration;
  /** drain() waits this long for in-flight uses. Default '30s'. */
  drainTimeout?: Duration;
  /** Leak detection: usage slope over `window`; 'trend' when the hard limit is under `horizon` away. */
  trend?: { window?: Duration; horizon?: Duration } | false;
  /** 'recycle' advice (an event; the guard never kills its process), only when idle. */
  recycle?: { every?: Duration; onLeak?: boolean } | false;
  /**
   * Keep-alive that follows demand: adaptive idle TTL, victims by predicted reuse, pre-warming, a load
   * forecast (README, "Keep-alive that follows demand"). Default off: the fixed idleTtl and LRU.
   */
  keepAlive?: KeepAliveOptions | false;
  /** pino-compatible; nothing is logged without one. */
  logger?: Logger;
  /** Path of libnvidia-ml.so.1 (default: VRAMGUARD_NVML_LIBRARY, else the system's). */
  libraryPath?: string;
  /**
   * Node-wide coordination with the other processes on this GPU that opt in (README, "Several servers,
   * one GPU"): admissions serialized across processes, the node's policy file, cross-process relief.
   */
  node?: NodeOption;
}

export interface ResolvedOptions {
  interval: number;
  idleTtl: number | null;
  returnRatio: number;
  returnTimeout: number;
  disposeTimeout: number;
  releaserTimeout: number;
  drainTimeout: number;
  padding: number;
  trend: { window: number; horizon: number } | null;
  recycle: { every: number | null; onLeak: boolean } | null;
  keepAlive: ResolvedKeepAlive | null;
  node: ResolvedNodeOption | null;
}

export function resolveOptions(options: GuardOptions): ResolvedOptions {
  const interval = parseDuration(options.interval ?? '100ms', 'interval');
  if (interval < 10) throw new InvalidOptionError('interval', `must be at least 10 ms, got ${interval} ms`);
  const returnRatio = options.returnRatio ?? 0.75;
  if (typeof returnRatio !== 'number' || !(returnRatio > 0 && returnRatio <= 1)) {
    throw new InvalidOptionError('returnRatio', `expected a number in (0, 1], got ${String(returnRatio)}`);
  }
  const positive = (value: Duration, name: string) => {
    const ms = parseDuration(value, name);
    if (ms <= 0) throw new InvalidOptionError(name, `must be more than 0, got ${String(value)}`);
    return ms;
  };
  const trendOption = options.trend === undefined ? {} : options.trend;
  const recycleOption = options.recycle === undefined ? false : options.recycle;
  return {
    interval,
    idleTtl: options.idleTtl === null ? null : positive(options.idleTtl ?? '5m', 'idleTtl'),
    returnRatio,
    returnTimeout: positive(options.returnTimeout ?? '5s', 'returnTimeout'),
    disposeTimeout: positive(options.disposeTimeout ?? '10s', 'disposeTimeout'),
    releaserTimeout: positive(options.releaserTimeout ?? '5s', 'releaserTimeout'),
    drainTimeout: parseDuration(options.drainTimeout ?? '30s', 'drainTimeout'),
    padding: parseBytes(options.padding ?? '256MiB', 'padding'),
    trend: trendOption
      ? {
          window: positive(trendOption.window ?? '10m', 'trend.window'),
          horizon: positive(trendOption.horizon ?? '1h', 'trend.horizon'),
        }
      : null,
    recycle: recycleOption
      ? {
          every: recycleOption.every === undefined ? null : positive(recycleOption.every, 'recycle.every'),
          onLeak: recycleOption.onLeak ?? true,
        }
      : null,
    keepAlive: resolveKeepAlive(options.keepAlive),
    node: resolveNodeOption(options.node),
  };
}

export interface NodeOption {
  /** This server's name on the node, as the policy file names it (e.g. 'server-a'). */
  name: string;
  /** The node's policy file (per-participant quotas or shares); every participant reads the same one. */
  policyFile?: string;
  /** Ledger directory (default VRAMGUARD_NODE_DIR, else /dev/shm); every participant must use the same. */
  dir?: string;
  /** Cross-process relief, opt-in: ask other participants to release idle sessions, and answer them. */
  relief?: boolean;
  /** How long an admission waits for other participants' answers to a relief request. Default '5s'. */
  reliefTimeout?: Duration;
  /** How long an operation waits for the node-wide lock. Default '10s'. */
  lockTimeout?: Duration;
}

export interface ResolvedNodeOption {
  name: string;
  policyFile?: string;
  dir?: string;
  relief: boolean;
  reliefTimeout: number;
  lockTimeout: number;
}

/** Checks the option at construction: a bad name, key or policy file fails there, not at the first load. */
export function resolveNodeOption(option: NodeOption | undefined): ResolvedNodeOption | null {
  if (option === undefined) return null;
  if (typeof option !== 'object' || option === null) {
    throw new InvalidOptionError('node', `expected { name, policyFile?, dir?, relief? }, got ${JSON.stringify(option)}`);
  }
  checkOptionKeys(option, ['name', 'policyFile', 'dir', 'relief', 'reliefTimeout', 'lockTimeout'], 'node.');
  const name = checkParticipantName(option.name);
  if (option.policyFile !== undefined) readPolicy(option.policyFile);
  if (option.relief !== undefined && typeof option.relief !== 'boolean') {
    throw new InvalidOptionError('node.relief', `expected true or false, got ${JSON.stringify(option.relief)}`);
  }
  return {
    name,
    policyFile: option.policyFile,
    dir: option.dir,
    relief: option.relief ?? false,
    reliefTimeout: parseDuration(option.reliefTimeout ?? '5s', 'node.reliefTimeout'),
    lockTimeout: parseDuration(option.lockTimeout ?? '10s', 'node.lockTimeout'),
  };
}

/** Parses a quota size: bytes, a size string, or a percentage of totalBytes. */
export function parseQuotaSize(value: QuotaSize, option: string, totalBytes: number | null, nvmlReason: string | null): number {
  if (typeof value === 'string' && /%\s*$/.test(value)) {
    const percent = Number(value.trim().slice(0, -1));
    if (!Number.isFinite(percent) || percent <= 0 || percent > 100) {
      throw new InvalidOptionError(option, `expected a percentage in (0, 100], got ${JSON.stringify(value)}`);
    }
    if (totalBytes === null) {
      throw new InvalidOptionError(
        option,
        `${JSON.stringify(value)} needs the device's total memory, but NVML is unavailable (${nvmlReason ?? 'unknown'}); give bytes`,
      );
    }
    return Math.floor((totalBytes * percent) / 100);
  }
  const bytes = parseBytes(value, option);
  if (bytes <= 0) throw new InvalidOptionError(option, `must be more than 0 bytes, got ${String(value)}`);
  return bytes;
}

export function validateScope(scope: unknown): ScopeOption {
  if (scope === undefined) return 'process-tree';
  if (scope === 'process-tree' || scope === 'device') return scope;
  if (typeof scope === 'object' && scope !== null && Array.isArray((scope as { pids?: unknown }).pids)) {
    const pids = (scope as { pids: unknown[] }).pids;
    if (pids.length === 0 || pids.some((p) => !Number.isInteger(p) || (p as number) <= 0)) {
      throw new InvalidOptionError('scope.pids', `expected a non-empty array of pids, got ${JSON.stringify(pids)}`);
    }
    return { pids: pids as number[] };
  }
  throw new InvalidOptionError('scope', `expected 'process-tree', 'device' or { pids: [...] }, got ${JSON.stringify(scope)}`);
}
