// The teardown proof (issue 9): samplers with 'sample' listeners, watermarks and a pending next() are
// never closed, and their environment ends: the script runs out of work, calls process.exit() at a
// random moment, or is a worker thread terminated at a random moment. Each way at least 100 times,
// with zero aborts and zero hangs. Rounds run in child processes, a few at a time, each with its own
// deadline; every round's seed is in the failure message, to replay it:
//   node test/fixtures/teardown-round.cjs <mode> <seed> [rounds]   (with the mock's environment set)
// VRAMGUARD_TEARDOWN_ROUNDS changes the count per way (the sanitizer run uses fewer; soak runs more).
import { spawn } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import type { MockNvml } from '../../src/testing';
import { twoGpuScenario, useMock } from '../helpers';

const root = join(__dirname, '..', '..');
const fixture = join(root, 'test', 'fixtures', 'teardown-round.cjs');
const samplerModule = join(root, 'dist', 'cjs', 'sampler.js');
const ROUNDS = Number(process.env.VRAMGUARD_TEARDOWN_ROUNDS ?? 100);
const WORKER_CHILDREN = 4; // the worker rounds are split over a few processes
const PARALLEL = Math.max(2, Math.min(4, availableParallelism()));
const HANG_MS = 60_000; // one child past this is a hang (a round takes well under a second unloaded)

interface Round {
  args: string[];
  status: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

let mock: MockNvml;
beforeAll(() => {
  mock = useMock(twoGpuScenario());
});
afterAll(() => mock.cleanup());

function runRound(args: string[]): Promise<Round> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [fixture, ...args], {
      env: { ...process.env, VRAMGUARD_SAMPLER_MODULE: samplerModule },
      stdio: ['ignore', 'pipe', 'pipe'],
      timeout: HANG_MS,
      killSignal: 'SIGKILL',
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('close', (status, signal) => resolve({ args, status, signal, stdout, stderr }));
  });
}

/** Runs every round, PARALLEL at a time. */
async function runAll(rounds: string[][]): Promise<Round[]> {
  const results: Round[] = [];
  let next = 0;
  const lane = async () => {
    while (next < rounds.length) {
      const args = rounds[next++]!;
      results.push(await runRound(args));
    }
  };
  await Promise.all(Array.from({ length: PARALLEL }, lane));
  return results;
}

/** The rounds that did not end as expected, one line each. */
function failures(results: Round[], expected: (round: Round) => boolean): string[] {
  return results
    .filter((round) => round.signal !== null || !expected(round) || /terminate called|FATAL ERROR|Aborted/.test(round.stderr))
    .map((round) => {
      const how = round.signal === 'SIGKILL' ? `hang (killed after ${HANG_MS} ms)` : `status ${round.status} signal ${round.signal}`;
      return `${round.args.join(' ')}: ${how}: ${round.stderr.trim().split('\n').slice(-3).join(' | ')}`;
    });
}

const seeds = (salt: number, count: number) => Array.from({ length: count }, (_, i) => String(salt * 100_000 + i + 1));
const timeout = Math.max(240_000, ROUNDS * 2_000);

describe(`teardown while sampling, ${ROUNDS} rounds each: no abort, no hang`, () => {
  it('the script ends without close()', { timeout }, async () => {
    const results = await runAll(seeds(1, ROUNDS).map((seed) => ['natural', seed]));
    expect(results).toHaveLength(ROUNDS);
    expect(failures(results, (r) => r.status === 0)).toEqual([]);
  });

  it('process.exit() at random moments: from a timer, a sample listener, a watermark handler', { timeout }, async () => {
    const results = await runAll(seeds(2, ROUNDS).map((seed) => ['exit', seed]));
    expect(results).toHaveLength(ROUNDS);
    expect(failures(results, (r) => r.status === 7)).toEqual([]);
  });

  it('worker threads terminated at random moments', { timeout }, async () => {
    const perChild = Math.ceil(ROUNDS / WORKER_CHILDREN);
    const results = await runAll(seeds(3, WORKER_CHILDREN).map((seed) => ['workers', seed, String(perChild)]));
    expect(failures(results, (r) => r.status === 0 && r.stdout === `workers ${perChild}\n`)).toEqual([]);
    expect(perChild * results.length).toBeGreaterThanOrEqual(ROUNDS);
  });
});
