// The process tree the guard counts: this process and every descendant, read from /proc.
import { fork } from 'node:child_process';
import { join } from 'node:path';

import { expect, it } from 'vitest';

import { processTree } from '../../src/guard/scope';

it('finds children and grandchildren, and forgets them when they exit', async () => {
  // A child that forks a grandchild and reports its pid.
  const script = join(__dirname, '..', 'fixtures', 'fork-grandchild.cjs');
  const child = fork(script, [], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
  const grandchild = await new Promise<number>((resolve) => child.once('message', (m) => resolve(m as number)));
  const tree = processTree();
  expect(tree).toEqual(expect.arrayContaining([process.pid, child.pid, grandchild]));
  expect([...tree].sort((a, b) => a - b)).toEqual(tree);
  child.send('exit');
  await new Promise((resolve) => child.once('exit', resolve));
  await expect
    .poll(() => processTree().filter((p) => p === child.pid || p === grandchild), { timeout: 5000 })
    .toEqual([]);
  expect(processTree(2 ** 22 + 12345)).toEqual([2 ** 22 + 12345]); // a pid that does not exist: just itself
});
