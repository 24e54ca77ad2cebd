// Node-wide admission (issue 11): the latency of one admit() when 1, 4 and 16 processes share a GPU's
// ledger and all admit back to back (the worst case: every admission contends for the node-wide
// flock), beside the single-process guard's admit() (no node ledger) in the same run. Each side runs in
// child processes, so all pay the same process start and IPC; only admit() itself is timed.
import { fork } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';

import { summarize } from './lib/stats.mjs';

export const id = 'nodewide';
export const title = 'Node-wide admission: latency with 1, 4 and 16 participants';

const child = (ctx) => join(ctx.root, 'bench', 'lib', 'nodewide-child.cjs');

async function round(ctx, mode, processes, count, dir) {
  const entry = join(ctx.root, 'dist', 'cjs', 'index.js');
  const kids = Array.from({ length: processes }, () =>
    fork(child(ctx), [entry, mode, dir, 'GPU-bench-0', String(count)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }),
  );
  try {
    const message = (kid, type) =>
      new Promise((resolve, reject) => {
        kid.on('message', (m) => m.type === type && resolve(m));
        // 'close', not 'exit': it comes after the IPC channel has delivered every message.
        kid.once('close', (code) => reject(new Error(`bench child exited with ${code} before '${type}'`)));
      });
    await Promise.all(kids.map((k) => message(k, 'ready')));
    const started = performance.now();
    const done = Promise.all(kids.map((k) => message(k, 'done')));
    for (const k of kids) k.send('go');
    const results = await done;
    const wallMs = performance.now() - started;
    const latencies = results.flatMap((r) => r.latencies);
    return { mode, processes, admissions: latencies.length, wallMs, perSecond: (latencies.length / wallMs) * 1000, ...summarize(latencies) };
  } finally {
    for (const k of kids) if (k.exitCode === null) k.kill('SIGKILL');
  }
}

export async function run(ctx) {
  const count = ctx.quick ? 50 : 500;
  // Where the ledger lives in production (tmpfs), in a directory of the bench's own.
  const base = existsSync('/dev/shm') ? '/dev/shm' : ctx.tmpdir;
  const dir = mkdtempSync(join(base, 'vramguard-bench-node-'));
  const rows = [];
  const results = [];
  try {
    for (const processes of [1, 4, 16]) {
      // Side by side: the single-process guard in as many processes (each alone with its own ledger),
      // then the node-wide ledger shared by all of them.
      for (const mode of ['guard', 'node']) {
        ctx.log(`nodewide: ${mode}, ${processes} process${processes === 1 ? '' : 'es'} × ${count} admissions`);
        const r = await round(ctx, mode, processes, count, dir);
        results.push(r);
      }
      const [g, n] = results.slice(-2);
      const ms = (v) => v.toFixed(3);
      rows.push([String(processes), ms(g.median), ms(g.p99), ms(n.median), ms(n.p99), (n.median / g.median).toFixed(1), Math.round(n.perSecond).toString()]);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return {
    id,
    title,
    results,
    tables: [
      {
        title: `admit() latency, ms, ${count} admissions per process back to back (admit then cancel)`,
        columns: ['processes', 'guard median', 'guard p99', 'node median', 'node p99', 'node/guard', 'node admits/s (all)'].map((t) => ({ title: t, align: 'right' })),
        rows,
        footer: [
          'guard: VramGuard.admit() without NVML, each process alone; node: NodeLedger.admit() sharing one GPU ledger',
          `ledger directory: a new directory under ${base} (production default: /dev/shm itself)`,
        ],
      },
    ],
  };
}
