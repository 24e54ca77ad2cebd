import { describe, expect, it } from 'vitest';

import { InvalidOptionError } from '../../src/errors';
import { formatBytes, parseBytes, parseDuration } from '../../src/units';

describe('parseBytes', () => {
  it('reads numbers and units', () => {
    expect(parseBytes(1234)).toBe(1234);
    expect(parseBytes('20GiB')).toBe(20 * 2 ** 30);
    expect(parseBytes('512 MiB')).toBe(512 * 2 ** 20);
    expect(parseBytes('1.5GB')).toBe(1.5e9);
    expect(parseBytes('42')).toBe(42);
  });
  it('names the option and the bad value', () => {
    expect(() => parseBytes('20 parsecs', 'quota.soft')).toThrow(InvalidOptionError);
    expect(() => parseBytes('20 parsecs', 'quota.soft')).toThrow(/^quota\.soft: cannot read "20 parsecs"/);
    expect(() => parseBytes(-1, 'quota.hard')).toThrow(/quota\.hard: .*got -1/);
    expect(() => parseBytes(Number.NaN, 'x')).toThrow(/got NaN/);
  });
});

describe('parseDuration', () => {
  it('reads numbers and units', () => {
    expect(parseDuration(250)).toBe(250);
    expect(parseDuration('100ms')).toBe(100);
    expect(parseDuration('5s')).toBe(5000);
    expect(parseDuration('10m')).toBe(600_000);
    expect(parseDuration('6h')).toBe(21_600_000);
  });
  it('rejects unknown units with the option name', () => {
    const error = (() => {
      try {
        parseDuration('5 fortnights', 'idleTtl');
      } catch (e) {
        return e as InvalidOptionError;
      }
      return undefined;
    })();
    expect(error?.code).toBe('INVALID_OPTION');
    expect(error?.option).toBe('idleTtl');
    expect(error?.message).toContain('"5 fortnights"');
  });
});

describe('formatBytes', () => {
  it('formats binary units', () => {
    expect(formatBytes(512)).toBe('512 B');
    expect(formatBytes(1.5 * 2 ** 30)).toBe('1.5 GiB');
  });
});
