// Guard benchmarks (issue "Guard"):
//   1. reaction   Time from a crossing of the soft limit made through the mock's live control (the
//                 moment the control line is written) to the first releaser call, at a 10 ms interval.
//                 Goal: p99 <= interval + 1 ms. The path: the mock applies the line on its next call
//                 (<= 1 ms), the native sampler's next pass (<= 10 ms) evaluates the watermark and wakes
//                 JS through the thread-safe function, the guard calls its releasers.
//   2. cpu        CPU time of a whole process (all threads) at 100 Hz: idle Node, a bare Sampler, and a
//                 VramGuard (sampler, watermarks, periodic checks), each in its own child process.
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';

import { measureReaction } from './lib/guard-reaction.mjs';
import { summarize } from './lib/stats.mjs';

const execFileAsync = promisify(execFile);
const GiB = 2 ** 30;

export const id = 'guard';
export const title = 'Guard: reaction time and CPU cost';

function settings(quick) {
  return quick ? { crossings: 20, cpuSeconds: 2 } : { crossings: 300, cpuSeconds: 10 };
}

async function reaction(ctx, s) {
  return summarize(await measureReaction(ctx.vramguard, ctx.testing, s.crossings));
}

async function cpu(ctx, s) {
  const mock = ctx.testing.createMockNvml({
    devices: Array.from({ length: 8 }, (_, i) =>
      ctx.testing.mockDevice(i, 80, { processes: [{ pid: 1, usedBytes: GiB, smUtilPercent: 10 }] }),
    ),
  });
  const results = {};
  try {
    for (const mode of ['idle', 'sampler', 'guard']) {
      const { stdout } = await execFileAsync(process.execPath, [join(ctx.root, 'bench', 'lib', 'cpu-child.cjs'), mode, String(s.cpuSeconds)], {
        env: { ...process.env, ...mock.env, VRAMGUARD_ENTRY: join(ctx.root, 'dist', 'cjs', 'index.js') },
      });
      const r = JSON.parse(stdout);
      results[mode] = { ...r, cpuPercent: ((r.userMs + r.systemMs) / r.wallMs) * 100 };
    }
  } finally {
    mock.cleanup();
  }
  return results;
}

export async function run(ctx) {
  const s = settings(ctx.quick);
  ctx.log('guard: reaction time');
  const r = await reaction(ctx, s);
  ctx.log('guard: CPU at 100 Hz');
  const c = await cpu(ctx, s);
  const ms = (v) => `${v.toFixed(2)} ms`;
  return {
    id,
    title,
    results: { reactionMs: r, cpu: c, intervalMs: 10, goalP99Ms: 11 },
    tables: [
      {
        title: `Soft-limit crossing (mock live control) to first releaser call, 10 ms interval, ${r.count} crossings`,
        columns: ['p10', 'median', 'p90', 'p99', 'max'].map((t) => ({ title: t, align: 'right' })),
        rows: [[ms(r.p10), ms(r.median), ms(r.p90), ms(r.p99), ms(r.max)]],
        footer: [`goal p99 <= 11 ms (interval + 1 ms): ${r.p99 <= 11 ? 'met' : 'NOT met'}`],
      },
      {
        title: `Whole-process CPU over ${s.cpuSeconds} s at 100 Hz (8 mocked GPUs; one child process each)`,
        columns: [{ title: 'process' }, ...['CPU % of one core', 'user', 'system', 'RSS'].map((t) => ({ title: t, align: 'right' }))],
        rows: ['idle', 'sampler', 'guard'].map((mode) => [
          mode === 'idle' ? 'idle Node (baseline)' : mode === 'sampler' ? 'Sampler, 10 ms' : 'VramGuard, 10 ms',
          `${c[mode].cpuPercent.toFixed(2)} %`,
          ms(c[mode].userMs),
          ms(c[mode].systemMs),
          `${(c[mode].rss / 2 ** 20).toFixed(1)} MiB`,
        ]),
      },
    ],
  };
}
