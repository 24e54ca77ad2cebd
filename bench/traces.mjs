// Keep-alive benchmark (issue 12): replays synthetic request traces (bench/lib/traces.mjs: steady,
// bursty, diurnal, one hot model and a long tail) over more models than fit, on a fake clock and a fake
// monitor, through VramGuard's public API (admit + commit with load/dispose, sessions.use). Per policy
// it counts cold starts (requests that waited for a load), reloads and their bytes, the time requests
// waited, and peak usage, which must never go over the hard limit.
//
//   node bench/traces.mjs           this suite alone (also part of `npm run bench`)
//   node bench/traces.mjs --audit   also, per run, each eviction made for room (admission, pressure)
//                                   against the one least-recently-used order would have made, judged
//                                   by when the trace next asks for each
//
// A policy is a name and guard options: today's fixed TTL with LRU victims, and the guard's keepAlive
// (adaptive TTL and victims by predicted reuse, with and without pre-warming).
import { existsSync, readdirSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { TRACES } from './lib/traces.mjs';

const GiB = 2 ** 30;
const OUR_PID = 4242;
/** The guard's defaults but for the hard limit: soft 90% of it, hysteresis 5% of soft. */
const QUOTA = { hard: '24GiB' };

export const id = 'traces';
export const title = 'Keep-alive: replayed request traces (fake clock)';

export const POLICIES = [
  { name: 'fixed 5m + LRU', options: { idleTtl: '5m' } },
  { name: 'fixed 1m + LRU', options: { idleTtl: '1m' } },
  { name: 'adaptive', options: { idleTtl: '5m', keepAlive: { adaptive: true, idleTtl: { min: '2m', max: '30m' } } } },
  {
    name: 'adaptive + prewarm',
    options: { idleTtl: '5m', keepAlive: { adaptive: true, idleTtl: { min: '2m', max: '30m' }, prewarm: true } },
  },
];

/** Replays one trace under one policy; resolves with its figures, or { unavailable } for an unknown policy. */
export async function replay(lib, trace, policy, options = {}) {
  const { VramGuard } = lib.vramguard;
  const { FakeClock, FakeMonitor } = lib.testing;
  const clock = new FakeClock(0);
  const monitor = new FakeMonitor([{ totalBytes: 48 * GiB, processes: { [OUR_PID]: 0 } }]);
  const held = new Map();
  let peak = 0;
  const sync = () => {
    let sum = 0;
    for (const b of held.values()) sum += b;
    peak = Math.max(peak, sum);
    monitor.setProcess(0, OUR_PID, sum);
  };
  const publish = () => {
    monitor.publish();
    clock.setTimer(publish, 1000);
  };
  clock.setTimer(publish, 1000);
  const guard = new VramGuard({ scope: { pids: [OUR_PID] }, quota: QUOTA, returnTimeout: '2s', monitor, clock, ...policy.options });
  const delay = (ms) => new Promise((resolve) => clock.setTimer(resolve, ms));
  const f = { requests: trace.requests.length, coldStarts: 0, waitedMs: 0, loads: 0, reloads: 0, reloadedBytes: 0, prewarmLoads: 0, refused: 0, evictions: {} };
  const byId = new Map(trace.models.map((m) => [m.id, m]));
  const audit = options.audit ? newAudit(trace) : null;
  guard.on('evict', (e) => {
    f.evictions[e.reason] = (f.evictions[e.reason] ?? 0) + 1;
    audit?.record(e, clock.now(), guard.status().sessions);
  });
  const registering = new Map();
  const loadedOnce = new Set();
  // Requests in flight per model: a load that starts with none waiting is a pre-warm.
  const asking = new Map();
  const loadModel = async (m) => {
    if (loadedOnce.has(m.id) && !(asking.get(m.id) > 0)) f.prewarmLoads += 1;
    held.set(m.id, m.bytes);
    sync();
    await delay(m.loadMs);
    f.loads += 1;
    if (loadedOnce.has(m.id)) {
      f.reloads += 1;
      f.reloadedBytes += m.bytes;
    }
    loadedOnce.add(m.id);
  };
  const handlers = (m) => ({
    load: () => loadModel(m),
    dispose: () => {
      held.delete(m.id);
      sync();
    },
  });
  const first = (m) => {
    let p = registering.get(m.id);
    if (!p) {
      p = (async () => {
        const reservation = await guard.admit(m.bytes, { id: m.id });
        try {
          await loadModel(m);
        } catch (error) {
          reservation.cancel();
          throw error;
        }
        reservation.commit(handlers(m));
      })();
      registering.set(m.id, p);
      p.catch(() => registering.delete(m.id));
    }
    return p;
  };
  const request = async (r) => {
    const m = byId.get(r.model);
    asking.set(m.id, (asking.get(m.id) ?? 0) + 1);
    try {
      if (!guard.sessions.has(m.id)) await first(m);
      let startedAt = 0;
      await guard.sessions.use(m.id, async () => {
        startedAt = clock.now();
        await delay(r.serviceMs);
      });
      if (startedAt > r.at) {
        f.coldStarts += 1;
        f.waitedMs += startedAt - r.at;
      }
    } catch (error) {
      if (error?.code !== 'VRAM_QUOTA') throw error;
      f.refused += 1;
    } finally {
      asking.set(m.id, asking.get(m.id) - 1);
    }
  };
  const inFlight = [];
  let settled = 0;
  for (const r of trace.requests) {
    await clock.advance(r.at - clock.now());
    inFlight.push(request(r).finally(() => (settled += 1)));
  }
  for (let guardRail = 0; settled < inFlight.length; guardRail += 1) {
    if (guardRail > 10_000) throw new Error(`bench: ${trace.name}/${policy.name}: requests never settled`);
    await clock.advance(1000);
  }
  await Promise.all(inFlight);
  let closed = false;
  const closing = guard.close().then(() => (closed = true));
  while (!closed) await clock.advance(1000);
  await closing;
  const hardBytes = guard.hardBytes;
  return { ...f, peakBytes: peak, hardBytes, overHard: peak > hardBytes, forecast: guard.status().keepAlive.forecast, audit: audit?.summary() };
}

/**
 * The eviction audit (`--audit`): at every eviction made to make room (admission, pressure), the
 * victim against the one least-recently-used order would have taken from the same evictable set, each
 * judged by when the trace next asks for it (the oracle the guard does not have). A victim asked for
 * sooner than the LRU pick is a worse decision than LRU's; the furthest next request (Belady) is the best.
 */
function newAudit(trace) {
  const times = new Map(trace.models.map((m) => [m.id, []]));
  for (const r of trace.requests) times.get(r.model).push(r.at);
  const nextAt = (id, now) => times.get(id).find((t) => t > now) ?? Infinity;
  const a = { decisions: 0, sameAsLru: 0, betterThanLru: 0, worseThanLru: 0, tiedWithLru: 0, belady: 0, byAge: {} };
  return {
    record(e, now, sessions) {
      if (e.reason !== 'admission' && e.reason !== 'pressure') return;
      const pool = sessions.filter((s) => s.id === e.id || (s.state === 'loaded' && s.busy === 0 && !s.pinned && s.children.length === 0));
      if (pool.length < 2) return;
      a.decisions += 1;
      const lru = pool.reduce((x, y) => (y.lastUsedAt < x.lastUsedAt ? y : x));
      const furthest = Math.max(...pool.map((s) => nextAt(s.id, now)));
      const victimNext = nextAt(e.id, now);
      if (victimNext === furthest) a.belady += 1;
      // Classed by the victim's idle time when chosen: where in a model's cycle the order goes wrong.
      const victim = pool.find((s) => s.id === e.id);
      const age = now - victim.lastUsedAt;
      const band = age < 30_000 ? 'idle < 30 s' : age < 120_000 ? 'idle 30 s–2 min' : age < 600_000 ? 'idle 2–10 min' : 'idle > 10 min';
      const b = (a.byAge[band] ??= { better: 0, worse: 0 });
      if (lru.id === e.id) a.sameAsLru += 1;
      else {
        const lruNext = nextAt(lru.id, now);
        if (victimNext > lruNext) (a.betterThanLru += 1), (b.better += 1);
        else if (victimNext < lruNext) (a.worseThanLru += 1), (b.worse += 1);
        else a.tiedWithLru += 1;
      }
    },
    summary: () => a,
  };
}

export async function run(ctx) {
  const lib = { vramguard: ctx.vramguard, testing: ctx.testing };
  const results = [];
  const started = performance.now();
  for (const make of TRACES) {
    const trace = make();
    for (const policy of POLICIES) {
      const t0 = performance.now();
      const r = await replay(lib, trace, policy, { audit: ctx.audit });
      results.push({ trace: trace.name, policy: policy.name, wallMs: performance.now() - t0, ...r });
      if (!r.unavailable && r.overHard) throw new Error(`bench: ${trace.name}/${policy.name}: peak ${r.peakBytes} over the hard limit ${r.hardBytes}`);
    }
  }
  const wallMs = performance.now() - started;
  const traces = TRACES.map((make) => make());
  const gib = (b) => (b / GiB).toFixed(1);
  const rows = results.map((r) =>
    r.unavailable
      ? [r.trace, r.policy, 'n/a', '', '', '', '', '', '', '', r.unavailable]
      : [
          r.trace,
          r.policy,
          String(r.requests),
          String(r.coldStarts),
          String(r.reloads),
          `${gib(r.reloadedBytes)} GiB`,
          `${(r.waitedMs / 1000).toFixed(0)} s`,
          String(r.refused),
          String(r.prewarmLoads),
          `${gib(r.peakBytes)} GiB`,
          `idle ${r.evictions.idle ?? 0}, admission ${r.evictions.admission ?? 0}, pressure ${r.evictions.pressure ?? 0}` +
            (r.forecast?.accuracy.meanAbsErrorRatio != null ? `; forecast error ${(100 * r.forecast.accuracy.meanAbsErrorRatio).toFixed(0)} %` : ''),
        ],
  );
  const sweep = ctx.seeds ? await seedSweep(lib, ctx.seeds) : null;
  return {
    id,
    title,
    results: { quota: QUOTA, wallMs, runs: results, ...(sweep ? { seedSweep: sweep.results } : {}) },
    tables: [
      {
        title: `Replayed traces, 1 h of fake time each, quota hard ${QUOTA.hard} (soft 90%, target 85.5%), models of 2–8 GiB (0.5 s + 1.5 s/GiB to load)`,
        columns: ['trace', 'policy', 'requests', 'cold starts', 'reloads', 'reloaded', 'waited', 'refused', 'prewarms', 'peak', 'evictions'].map((t, i) => ({ title: t, align: i >= 2 && i <= 9 ? 'right' : 'left' })),
        rows,
        footer: [
          ...traces.map((t) => `${t.name}: ${t.models.length} models, ${gib(t.models.reduce((s, m) => s + m.bytes, 0))} GiB in all; ${t.description}`),
          'cold starts: requests that waited for a load (first loads included); reloads: loads after a model\'s first; waited: their total wait;',
          'refused: requests whose load did not fit (VramQuotaError); prewarms: reloads started with no request for the model in flight;',
          'peak: the most the fake GPU held (never over the hard limit); forecast error: mean absolute error of the 1-minute load forecast over mean usage.',
          `never over the hard limit: ${results.every((r) => r.unavailable || !r.overHard) ? 'yes' : 'NO'}; replay took ${(wallMs / 1000).toFixed(1)} s of wall time`,
        ],
      },
      ...(sweep ? [sweep.table] : []),
    ],
  };
}

/**
 * The same comparison (fixed 5m + LRU against adaptive) on `count` other seeds of every trace (101,
 * 102, ...): one seed's table can flatter a policy; this says how often it wins, and by how much in all.
 */
async function seedSweep(lib, count) {
  const [fixed, adaptive] = [POLICIES.find((p) => p.name === 'fixed 5m + LRU'), POLICIES.find((p) => p.name === 'adaptive')];
  const seeds = Array.from({ length: count }, (_, i) => 101 + i);
  const results = [];
  for (const make of TRACES) {
    const row = { trace: make().name, fixed: 0, adaptive: 0, wins: 0, ties: 0, losses: 0, overHard: false };
    for (const seed of seeds) {
      const trace = make({ seed });
      const f = await replay(lib, trace, fixed);
      const a = await replay(lib, trace, adaptive);
      row.fixed += f.coldStarts;
      row.adaptive += a.coldStarts;
      row.overHard ||= f.overHard || a.overHard;
      if (a.coldStarts < f.coldStarts) row.wins += 1;
      else if (a.coldStarts > f.coldStarts) row.losses += 1;
      else row.ties += 1;
    }
    if (row.overHard) throw new Error(`bench: ${row.trace}: over the hard limit on a seed of the sweep`);
    results.push(row);
  }
  return {
    results,
    table: {
      title: `The same traces on ${count} other seeds each (${seeds[0]}..${seeds.at(-1)}): cold starts, fixed 5m + LRU against adaptive`,
      columns: ['trace', 'fixed 5m + LRU (all seeds)', 'adaptive (all seeds)', 'change', 'adaptive fewer / same / more'].map((t, i) => ({ title: t, align: i ? 'right' : 'left' })),
      rows: results.map((r) => [r.trace, String(r.fixed), String(r.adaptive), `${(((r.adaptive - r.fixed) / r.fixed) * 100).toFixed(1)} %`, `${r.wins} / ${r.ties} / ${r.losses}`]),
      footer: ['never over the hard limit on any seed: yes'],
    },
  };
}

// Standalone: node bench/traces.mjs [--audit] [--seeds N]
if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const root = join(dirname(fileURLToPath(import.meta.url)), '..');
  const { ensureDist } = await import('./lib/build.mjs');
  const { formatTable } = await import('./lib/table.mjs');
  // Rebuilt when missing or older than any source: a stale build would replay the old policy.
  const built = join(root, 'dist', 'cjs', 'guard', 'demand', 'index.js');
  const newest = (dir) => readdirSync(dir, { withFileTypes: true }).reduce((m, e) => Math.max(m, e.isDirectory() ? newest(join(dir, e.name)) : statSync(join(dir, e.name)).mtimeMs), 0);
  ensureDist(root, { force: !existsSync(built) || statSync(built).mtimeMs < newest(join(root, 'src')), log: (l) => console.error(l) });
  const require = createRequire(import.meta.url);
  const seedsAt = process.argv.indexOf('--seeds');
  const seeds = seedsAt > 0 ? Number(process.argv[seedsAt + 1]) : 0;
  if (seedsAt > 0 && !(Number.isInteger(seeds) && seeds > 0)) throw new Error(`--seeds: expected a positive whole number, got ${process.argv[seedsAt + 1]}`);
  const section = await run({ root, quick: false, seeds, audit: process.argv.includes('--audit'), log: (l) => console.error(l), vramguard: require('../dist/cjs/index.js'), testing: require('../dist/cjs/testing/index.js') });
  if (process.argv.includes('--audit')) {
    for (const r of section.results.runs) console.log(`${r.trace} / ${r.policy}: ${JSON.stringify(r.audit)}`);
  }
  for (const table of section.tables) {
    console.log(`${table.title}\n`);
    console.log(formatTable(table.columns, table.rows));
    for (const line of table.footer ?? []) console.log(line);
  }
}
