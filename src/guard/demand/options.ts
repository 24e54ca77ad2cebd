// The keep-alive options (guard-wide and per session): defaults, parsing and validation. Every bad value
// fails at construction with one message naming the option. Pure.
import { InvalidOptionError } from '../../errors';
import { checkOptionKeys } from '../../option-keys';
import { type Duration, parseDuration } from '../../units';
import { DEFAULT_DEMAND } from './session-demand';
import { validateAlpha } from './stats';
import { type TtlBounds, validateTtlBounds } from './ttl';

export interface KeepAliveOptions {
  /** Adaptive idle TTL and eviction by predicted reuse, for every session (a session may opt out). Default false. */
  adaptive?: boolean;
  /** Bounds of the adaptive TTL. Default { min: '2m', max: '30m' }. */
  idleTtl?: { min?: Duration; max?: Duration };
  /** EWMA smoothing factor, 0.1–0.3. Default 0.2. */
  alpha?: number;
  /** The sliding window of use counts. Default { bucket: '10s', span: '10m' }. */
  window?: { bucket?: Duration; span?: Duration };
  /** How fast recorded gaps fade from the prediction: a gap counts half after this long. Default '1h'. */
  halfLife?: Duration;
  /** Load evicted sessions ahead of their predicted use. Default false. */
  prewarm?: boolean | { minUses?: number; allowEviction?: boolean };
  /** The per-GPU load forecast (regression over the last 10 minutes). Default { horizon: '1m' }; false: off. */
  forecast?: { horizon?: Duration } | false;
}

/** Per session: overrides the guard's keep-alive for this session. */
export interface SessionKeepAliveOptions {
  /** Default: the guard's keepAlive.adaptive. */
  adaptive?: boolean;
  /** Bounds of this session's adaptive TTL (each defaults to the guard's). */
  idleTtl?: { min?: Duration; max?: Duration };
}

export interface ResolvedKeepAlive {
  adaptive: boolean;
  bounds: TtlBounds;
  demand: { alpha: number; bucketMs: number; buckets: number; halfLifeMs: number };
  prewarm: { minUses: number; allowEviction: boolean } | null;
  forecast: { horizonMs: number } | null;
}

export const DEFAULT_TTL_BOUNDS = { min: '2m', max: '30m' } as const;

const KEYS = ['adaptive', 'idleTtl', 'alpha', 'window', 'halfLife', 'prewarm', 'forecast'] as const;

function checkBoolean(value: unknown, option: string): boolean | undefined {
  if (value !== undefined && typeof value !== 'boolean') throw new InvalidOptionError(option, `expected true or false, got ${JSON.stringify(value)}`);
  return value;
}

function checkObject(value: unknown, option: string, keys: readonly string[]): void {
  if (value === undefined) return;
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new InvalidOptionError(option, `expected an object with ${keys.join(', ')}, got ${JSON.stringify(value)}`);
  }
  checkOptionKeys(value, keys, `${option}.`);
}

function bounds(value: { min?: Duration; max?: Duration } | undefined, option: string, base: TtlBounds | null): TtlBounds {
  checkObject(value, option, ['min', 'max']);
  const min = value?.min !== undefined ? parseDuration(value.min, `${option}.min`) : (base?.minMs ?? parseDuration(DEFAULT_TTL_BOUNDS.min));
  const max = value?.max !== undefined ? parseDuration(value.max, `${option}.max`) : (base?.maxMs ?? parseDuration(DEFAULT_TTL_BOUNDS.max));
  return validateTtlBounds(min, max, option);
}

/** The guard's keepAlive option; null when absent or false (fixed TTL and LRU only, no forecast). */
export function resolveKeepAlive(options: KeepAliveOptions | false | undefined): ResolvedKeepAlive | null {
  if (options === undefined || options === false) return null;
  checkObject(options, 'keepAlive', KEYS);
  const adaptive = checkBoolean(options.adaptive, 'keepAlive.adaptive') ?? false;
  const alpha = validateAlpha(options.alpha ?? DEFAULT_DEMAND.alpha, 'keepAlive.alpha');
  checkObject(options.window, 'keepAlive.window', ['bucket', 'span']);
  const bucketMs = parseDuration(options.window?.bucket ?? DEFAULT_DEMAND.bucketMs, 'keepAlive.window.bucket');
  if (bucketMs < 100) throw new InvalidOptionError('keepAlive.window.bucket', `must be at least 100 ms, got ${bucketMs} ms`);
  const spanMs = parseDuration(options.window?.span ?? DEFAULT_DEMAND.bucketMs * DEFAULT_DEMAND.buckets, 'keepAlive.window.span');
  const buckets = Math.round(spanMs / bucketMs);
  if (buckets < 2 || buckets > 10_000) {
    throw new InvalidOptionError('keepAlive.window.span', `(${spanMs} ms) must hold 2 to 10000 buckets of ${bucketMs} ms, got ${buckets}`);
  }
  const halfLifeMs = parseDuration(options.halfLife ?? DEFAULT_DEMAND.halfLifeMs, 'keepAlive.halfLife');
  if (halfLifeMs < 1000) throw new InvalidOptionError('keepAlive.halfLife', `must be at least 1 s, got ${halfLifeMs} ms`);
  let prewarm: ResolvedKeepAlive['prewarm'] = null;
  if (options.prewarm !== undefined && options.prewarm !== false) {
    if (options.prewarm === true) prewarm = { minUses: 3, allowEviction: false };
    else {
      checkObject(options.prewarm, 'keepAlive.prewarm', ['minUses', 'allowEviction']);
      const minUses = options.prewarm.minUses ?? 3;
      if (!Number.isInteger(minUses) || minUses < 2) {
        throw new InvalidOptionError('keepAlive.prewarm.minUses', `expected an integer of at least 2, got ${String(minUses)}`);
      }
      prewarm = { minUses, allowEviction: checkBoolean(options.prewarm.allowEviction, 'keepAlive.prewarm.allowEviction') ?? false };
    }
  }
  let forecast: ResolvedKeepAlive['forecast'] = null;
  if (options.forecast !== false) {
    checkObject(options.forecast, 'keepAlive.forecast', ['horizon']);
    const horizonMs = parseDuration(options.forecast?.horizon ?? '1m', 'keepAlive.forecast.horizon');
    if (horizonMs < 1000) throw new InvalidOptionError('keepAlive.forecast.horizon', `must be at least 1 s, got ${horizonMs} ms`);
    forecast = { horizonMs };
  }
  return { adaptive, bounds: bounds(options.idleTtl, 'keepAlive.idleTtl', null), demand: { alpha, bucketMs, buckets, halfLifeMs }, prewarm, forecast };
}

/** A session's keep-alive: whether it is adaptive, and its TTL bounds. */
export function resolveSessionKeepAlive(
  options: SessionKeepAliveOptions | undefined,
  guard: ResolvedKeepAlive | null,
  id: string,
): { adaptive: boolean; bounds: TtlBounds } {
  const option = `keepAlive (session ${id})`;
  checkObject(options, option, ['adaptive', 'idleTtl']);
  const adaptive = checkBoolean(options?.adaptive, `${option}.adaptive`) ?? guard?.adaptive ?? false;
  if (adaptive && !guard) {
    throw new InvalidOptionError(`${option}.adaptive`, "needs the guard's keepAlive option (e.g. keepAlive: {}) for its window and bounds");
  }
  return { adaptive, bounds: guard ? bounds(options?.idleTtl, `${option}.idleTtl`, guard.bounds) : bounds(undefined, option, null) };
}
