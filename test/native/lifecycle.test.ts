// Lifecycle: several worker_threads sampling at once, create/terminate churn, and a process that
// exits (or throws, or runs out of work) while sampling neither crashes nor hangs.
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { Sampler } from '../../src/sampler';
import type { MockNvml } from '../../src/testing';
import { GiB, twoGpuScenario, useMock } from '../helpers';

const root = join(__dirname, '..', '..');
// Workers and child processes load the built package, as users do.
const entry = join(root, 'dist', 'cjs', 'index.js');

let mock: MockNvml;
beforeAll(() => {
  mock = useMock(twoGpuScenario());
});
afterAll(() => mock.cleanup());

function startWorker(): { worker: Worker; firstSample: Promise<{ devices: number; used: number }> } {
  const worker = new Worker(join(root, 'test', 'fixtures', 'worker-sampler.cjs'), { workerData: { entry } });
  const firstSample = new Promise<{ devices: number; used: number }>((resolve, reject) => {
    worker.once('message', resolve);
    worker.once('error', reject);
  });
  return { worker, firstSample };
}

describe('worker_threads', () => {
  it('samples in several workers at once, beside the main thread', async () => {
    const main = new Sampler({ interval: '10ms' }).start();
    const workers = Array.from({ length: 4 }, startWorker);
    const samples = await Promise.all(workers.map((w) => w.firstSample));
    expect(samples).toEqual(Array(4).fill({ type: 'sample', devices: 2, used: 6 * GiB }));
    const exits = workers.map((w) => new Promise<number>((resolve) => w.worker.once('exit', resolve)));
    workers.forEach((w) => w.worker.postMessage('close'));
    expect(await Promise.all(exits)).toEqual([0, 0, 0, 0]);
    const after = await main.next();
    expect(after.devices[0]!.memoryUsedBytes).toBe(6 * GiB);
    main.close();
  });

  it('survives create/terminate churn, terminating workers mid-sampling', async () => {
    for (let round = 0; round < 20; round += 1) {
      const { worker, firstSample } = startWorker();
      if (round % 2 === 0) await firstSample; // half are killed before their first sample
      await worker.terminate();
    }
    const sampler = new Sampler({ interval: '10ms' }).start();
    expect((await sampler.next()).devices).toHaveLength(2);
    sampler.close();
  });
});

describe('process exit while sampling', () => {
  const run = (how: string) =>
    spawnSync(process.execPath, [join(root, 'test', 'fixtures', 'exit-while-sampling.cjs'), how], {
      env: { ...process.env, VRAMGUARD_ENTRY: entry },
      encoding: 'utf8',
      timeout: 15_000,
    });

  it('process.exit() mid-sampling exits with its code, no crash, no hang', () => {
    const result = run('exit');
    expect(result.signal).toBeNull();
    expect(result.stdout).toBe('sampling\n');
    expect(result.status).toBe(7);
  });

  it('an uncaught exception while sampling exits 1, not a native crash', () => {
    const result = run('throw');
    expect(result.signal).toBeNull();
    expect(result.status).toBe(1);
    expect(result.stderr).toContain('boom');
  });

  it("an error thrown by a 'sample' listener is an uncaught exception (exit 1), not lost, not a native crash", () => {
    const result = run('listener');
    expect(result.signal).toBeNull();
    expect(result.status).toBe(1);
    expect(result.stderr).toContain('listener boom');
    expect(result.stderr).not.toContain('terminate called');
  });

  it('a running sampler does not keep the process alive', () => {
    const result = run('drain');
    expect(result.signal).toBeNull();
    expect(result.status).toBe(0);
    expect(result.stdout).toBe('sampling\n');
  });
});
