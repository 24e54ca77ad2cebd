// native/file_lock.cc: flock(2) without blocking, as the node-wide ledger uses it (and under ASan in CI).
import { closeSync, openSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, expect, it } from 'vitest';

import { binding } from '../../src/nvml';
import { tempDir } from '../node-ledger/helpers';

const temp = tempDir();
const fds: number[] = [];
afterEach(() => {
  for (const fd of fds.splice(0)) closeSync(fd);
});
afterAll(() => temp.remove());

function open(): number {
  const fd = openSync(join(temp.dir, 'lock'), 'a+');
  fds.push(fd);
  return fd;
}

it('two open files of one path exclude each other; unlock and close let the other in', () => {
  const a = open();
  const b = open();
  expect(binding().tryLockFile(a)).toBe(true);
  expect(binding().tryLockFile(a)).toBe(true); // the holder again: still held, not a deadlock
  expect(binding().tryLockFile(b)).toBe(false);
  binding().unlockFile(a);
  expect(binding().tryLockFile(b)).toBe(true);
  expect(binding().tryLockFile(a)).toBe(false);
  closeSync(fds.splice(fds.indexOf(b), 1)[0]!); // closing drops the lock, as a holder's death does
  expect(binding().tryLockFile(a)).toBe(true);
});

it('names bad descriptors with a typed error', () => {
  expect(() => binding().tryLockFile(-1)).toThrow(/tryLockFile\(fd\): fd must be a non-negative integer, got -1/);
  expect(() => binding().tryLockFile(1.5)).toThrow(RangeError);
  expect(() => (binding().tryLockFile as (x: unknown) => boolean)('3')).toThrow(TypeError);
  expect(() => binding().tryLockFile(987654)).toThrow(expect.objectContaining({ code: 'EBADF', syscall: 'flock' }));
  expect(() => binding().unlockFile(987654)).toThrow(/unlockFile failed: Bad file descriptor/);
});
