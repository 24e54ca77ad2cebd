// Parsing of the sizes and durations options accept: plain numbers (bytes, milliseconds) or strings
// with a unit. Errors name the option and the bad value.
import { InvalidOptionError } from './errors';

const BYTE_UNITS: Record<string, number> = {
  b: 1,
  kb: 1e3,
  mb: 1e6,
  gb: 1e9,
  tb: 1e12,
  kib: 2 ** 10,
  mib: 2 ** 20,
  gib: 2 ** 30,
  tib: 2 ** 40,
};

const DURATION_UNITS: Record<string, number> = {
  us: 0.001,
  ms: 1,
  s: 1000,
  m: 60_000,
  min: 60_000,
  h: 3_600_000,
};

/** A size: bytes as a number, or a string such as `'20GiB'`, `'512MiB'`, `'1.5GB'`. */
export type ByteSize = number | string;
/** A duration: milliseconds as a number, or a string such as `'100ms'`, `'5s'`, `'10m'`, `'6h'`. */
export type Duration = number | string;

function describe(value: unknown): string {
  return typeof value === 'string' ? JSON.stringify(value) : String(value);
}

/** Parses a size into bytes (an integer). */
export function parseBytes(value: ByteSize, option = 'size'): number {
  if (typeof value === 'number') {
    if (!Number.isFinite(value) || value < 0) {
      throw new InvalidOptionError(option, `expected a non-negative number of bytes, got ${describe(value)}`);
    }
    return Math.round(value);
  }
  if (typeof value !== 'string') {
    throw new InvalidOptionError(option, `expected bytes or a string like '20GiB', got ${describe(value)}`);
  }
  const match = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(value);
  const unit = match?.[2]?.toLowerCase() || 'b';
  const factor = BYTE_UNITS[unit];
  if (!match || factor === undefined) {
    throw new InvalidOptionError(
      option,
      `cannot read ${describe(value)} as a size (use bytes or B, KB, MB, GB, TB, KiB, MiB, GiB, TiB)`,
    );
  }
  return Math.round(Number(match[1]) * factor);
}

/** Parses a duration into milliseconds. */
export function parseDuration(value: Duration, option = 'duration'): number {
  if (typeof value === 'number') {
    if (!Number.isFinite(value) || value < 0) {
      throw new InvalidOptionError(option, `expected a non-negative number of milliseconds, got ${describe(value)}`);
    }
    return value;
  }
  if (typeof value !== 'string') {
    throw new InvalidOptionError(option, `expected milliseconds or a string like '100ms', got ${describe(value)}`);
  }
  const match = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(value);
  const unit = match?.[2]?.toLowerCase() || 'ms';
  const factor = DURATION_UNITS[unit];
  if (!match || factor === undefined) {
    throw new InvalidOptionError(option, `cannot read ${describe(value)} as a duration (use us, ms, s, m, h)`);
  }
  return Number(match[1]) * factor;
}

/** Formats bytes for people: `21.3 GiB`. */
export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (Math.abs(value) >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${unit === 0 ? value : value.toFixed(1)} ${units[unit]}`;
}
