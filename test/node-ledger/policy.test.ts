import { chmodSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, expect, it } from 'vitest';

import { parsePolicy, readPolicy, shareBytes } from '../../src/node-ledger/policy';
import { tempDir } from './helpers';

const GiB = 2 ** 30;
let temp: ReturnType<typeof tempDir>;
beforeEach(() => {
  temp = tempDir();
});
afterEach(() => temp.remove());

it('gives sizes, fractions of the usable memory, a default, and per-GPU blocks', () => {
  const policy = parsePolicy(
    JSON.stringify({
      participants: { 'server-a': '40GiB', 'server-b': { share: 0.25 } },
      default: '8GiB',
      gpus: { 'GPU-1': { participants: { 'server-a': '20GiB' } } },
    }),
    'p.json',
  );
  expect(shareBytes(policy, 'server-a', 'GPU-0', 80 * GiB)).toBe(40 * GiB);
  expect(shareBytes(policy, 'server-b', 'GPU-0', 80 * GiB)).toBe(20 * GiB);
  expect(shareBytes(policy, 'server-b', 'GPU-0', null)).toBeNull();
  expect(shareBytes(policy, 'other', 'GPU-0', 80 * GiB)).toBe(8 * GiB);
  // A GPU's own block replaces the top one: no default there.
  expect(shareBytes(policy, 'server-a', 'GPU-1', 80 * GiB)).toBe(20 * GiB);
  expect(shareBytes(policy, 'other', 'GPU-1', 80 * GiB)).toBeNull();
  expect(shareBytes(null, 'server-a', 'GPU-0', 80 * GiB)).toBeNull();
});

it('names the bad value in one line', () => {
  const bad = (value: unknown) => () => parsePolicy(JSON.stringify(value), 'p.json');
  expect(() => parsePolicy('{ nope', 'p.json')).toThrow(/^p\.json: policy file is not valid JSON/);
  expect(bad({ participants: { a: '40 parsecs' } })).toThrow(/policy\.participants\.a: cannot read "40 parsecs" as a size/);
  expect(bad({ participants: { a: { share: 1.5 } } })).toThrow(/policy\.participants\.a\.share: expected a number in \(0, 1\], got 1\.5/);
  expect(bad({ participant: {} })).toThrow(/policy: unknown key "participant"/);
  expect(bad({ gpus: { 'GPU-1': { gpus: {} } } })).toThrow(/policy\.gpus\.GPU-1: unknown key "gpus"/);
  expect(bad({ participants: [] })).toThrow(/policy\.participants: expected an object/);
});

it('refuses a policy file that group or others may write', () => {
  const path = join(temp.dir, 'policy.json');
  writeFileSync(path, '{"default":"1GiB"}');
  chmodSync(path, 0o664);
  expect(() => readPolicy(path)).toThrow(/mode 664: writable by group or others, who could set any quota; chmod 644/);
  chmodSync(path, 0o644);
  expect(readPolicy(path).policy.top.default).toEqual({ bytes: GiB });
  expect(() => readPolicy(join(temp.dir, 'absent.json'))).toThrow(/cannot read the policy file/);
});
