// Node-wide admission (issue 11): the latency of one VramGuard.admit() when 1, 4 and 16 guards with
// option node share a GPU's ledger and all admit back to back (the worst case: every admission contends
// for the node-wide flock), beside the single-process guard's admit() (no node option) and the
// NodeLedger module alone, and the lock's floor (the module admitting alone with as many participants in
// the ledger), in the same run, on the mock NVML. Each side runs in child processes, so all pay the same
// process start and IPC; only admit() itself is timed.
import { fork } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';

import { summarize } from './lib/stats.mjs';

export const id = 'nodewide';
export const title = 'Node-wide admission: latency with 1, 4 and 16 participants';

const child = (ctx) => join(ctx.root, 'bench', 'lib', 'nodewide-child.cjs');

async function round(ctx, mode, processes, count, dir, mock) {
  const entry = join(ctx.root, 'dist', 'cjs', 'index.js');
  // 'entries': one process holding `processes` participants, admitting alone.
  const kids = Array.from({ length: mode === 'entries' ? 1 : processes }, () =>
    fork(child(ctx), [entry, mode, dir, mock.uuid, String(count), String(processes)], {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      env: { ...process.env, ...mock.env },
    }),
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
  const count = ctx.quick ? 50 : 300;
  // Where the ledger lives in production (tmpfs), in a directory of the bench's own.
  const base = existsSync('/dev/shm') ? '/dev/shm' : ctx.tmpdir;
  const dir = mkdtempSync(join(base, 'vramguard-bench-node-'));
  const device = ctx.testing.mockDevice(0, 80);
  const mock = ctx.testing.createMockNvml({ devices: [device] });
  const rows = [];
  const results = [];
  try {
    for (const processes of [1, 4, 16]) {
      // Side by side: the single-process guard in as many processes (each alone), the guard with option
      // node (all sharing one GPU ledger), the node ledger module alone, and the lock's floor (one process
      // with as many participants in the ledger, admitting alone).
      const round3 = {};
      for (const mode of ['guard', 'node', 'ledger', 'entries']) {
        ctx.log(`nodewide: ${mode}, ${processes} process${processes === 1 ? '' : 'es'} × ${count} admissions`);
        const r = await round(ctx, mode, processes, count, dir, { env: mock.env, uuid: device.uuid });
        results.push(r);
        round3[mode] = r;
      }
      const { guard: g, node: n, ledger: l, entries: e } = round3;
      const ms = (v) => v.toFixed(3);
      rows.push([String(processes), ms(g.median), ms(g.p99), ms(n.median), ms(n.p99), ms(l.median), ms(l.p99), ms(e.median),
        (n.median / g.median).toFixed(0), Math.round(n.perSecond).toString(), Math.round(l.perSecond).toString()]);
    }
  } finally {
    mock.cleanup();
    rmSync(dir, { recursive: true, force: true });
  }
  return {
    id,
    title,
    results,
    tables: [
      {
        title: `VramGuard.admit() latency, ms, ${count} admissions per process back to back (admit then cancel), mock NVML`,
        columns: ['processes', 'guard median', 'guard p99', 'guard+node median', 'guard+node p99', 'ledger alone median', 'ledger alone p99',
          'uncontended, N entries', 'node/guard', 'guard+node admits/s (all)', 'ledger admits/s (all)'].map((t) => ({ title: t, align: 'right' })),
        rows,
        footer: [
          'guard: VramGuard without option node, each process alone; guard+node: VramGuard with option node, all sharing one GPU ledger; ledger alone: NodeLedger.admit()',
          'uncontended, N entries: NodeLedger.admit() in one process with N participants in the ledger, admitting alone (the work done under the lock)',
          `ledger directory: a new directory under ${base} (production default: /dev/shm itself)`,
        ],
      },
    ],
  };
}
