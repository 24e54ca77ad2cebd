// Core benchmarks: what vramguard's steady state costs.
//
//   1. passes     One sampling pass of the native thread (snapshot.passDurationMs, measured inside the
//                 thread around the whole pass) against the same NVML calls made from a plain C loop
//                 (bench/raw_nvml_loop.c), on the same mock scenario, in alternating rounds.
//   2. latest     sampler.latest() when nothing new was published: the cached path, one native call
//                 comparing sequence numbers.
//   3. convert    Turning a fresh 8-device snapshot into JS objects: the native sampler's latest() with
//                 no known sequence converts on every call (the addon packs it, src/native-snapshot.ts
//                 builds the objects), against the raw C loop's pass back to back from the same run.
//
// run(ctx) returns a section for bench/run.mjs: { id, title, results, tables }.
import { execFile, spawn } from 'node:child_process';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';

import recorder from './lib/pass-recorder.cjs';
import { benchScenario, DEVICES, PROCESSES_PER_DEVICE } from './lib/scenario.mjs';
import { median, summarize } from './lib/stats.mjs';
import { formatNs } from './lib/table.mjs';

const execFileAsync = promisify(execFile);
const { countProcesses, recordPasses } = recorder;

export const id = 'core';
/** The driver era the timed rounds run on: the newest, whose entry points DeviceReader prefers. */
const BENCH_ERA = '580';
export const title = 'Sampling pass, latest() and snapshot conversion';

/** Settings: the full run, and --quick for a smoke test of the harness. */
function settings(quick) {
  return quick
    ? { intervalMs: 10, roundMs: 500, rounds: 2, warmupPasses: 3, latestCalls: 100_000, latestRounds: 3, convertRoundMs: 50, convertRounds: 3 }
    : { intervalMs: 10, roundMs: 2000, rounds: 9, warmupPasses: 3, latestCalls: 1_000_000, latestRounds: 9, convertRoundMs: 200, convertRounds: 9 };
}

async function until(predicate, what, timeoutMs = 5000) {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`bench: timed out waiting for ${what}`);
    await sleep(2);
  }
}

// ---- 1. passes --------------------------------------------------------------------------------------

/** The raw C loop, paced like the sampler, in its own process. Figures in ns. */
async function rawRound(ctx, mock, { passes, intervalMs, warmupPasses }) {
  const args = [mock.libraryPath, '--passes', String(passes), '--warmup', String(warmupPasses), '--interval-ms', String(intervalMs)];
  const { stdout } = await execFileAsync(ctx.rawLoopPath, args, { env: { ...process.env, ...mock.env } });
  return JSON.parse(stdout);
}

/** What a sampler round recorded (bench/lib/pass-recorder.cjs), summarized. */
function samplerFigures(seen) {
  const { durationsNs, ...rest } = seen;
  return { ...summarize(durationsNs), ...rest };
}

/** A Sampler at intervalMs for roundMs in this process (the harness's own, which ran the rounds before). */
async function samplerRound(ctx, mock, { roundMs, intervalMs, warmupPasses }) {
  const sampler = new ctx.vramguard.Sampler({ interval: intervalMs, libraryPath: mock.libraryPath });
  const seen = recordPasses(sampler, warmupPasses);
  sampler.start();
  await sleep(roundMs);
  sampler.close();
  return samplerFigures(seen());
}

/** The same in a fresh Node process of its own (bench/lib/sampler-child.cjs), as the raw loop runs. */
async function samplerChildRound(ctx, mock, { roundMs, intervalMs, warmupPasses }) {
  const args = [join(ctx.root, 'bench', 'lib', 'sampler-child.cjs'), String(intervalMs), String(roundMs), String(warmupPasses)];
  const env = { ...process.env, ...mock.env, VRAMGUARD_ENTRY: join(ctx.root, 'dist', 'cjs', 'index.js') };
  const { stdout } = await execFileAsync(process.execPath, args, { env, maxBuffer: 16 * 1024 * 1024 });
  return samplerFigures(JSON.parse(stdout));
}

/**
 * The sides of each round. The headline pair is `raw` and `sampler`: both in a process of their own,
 * started for the round, on the bench scenario (critical XID events supported: both processes run an
 * event-waiting thread beside the passes, the mock's wait polling its state every millisecond). For
 * context: the sampler in the harness's process (as this suite measured it before 2026-12-01), and both
 * sides with events unsupported (no second thread in either process).
 */
const SIDES = [
  { id: 'raw', kind: 'raw', mock: 'events', title: 'raw C loop' },
  { id: 'sampler', kind: 'child', mock: 'events', title: 'sampler, own process' },
  { id: 'samplerInProcess', kind: 'inProcess', mock: 'events', title: "sampler, harness's process" },
  { id: 'rawNoEvents', kind: 'raw', mock: 'noEvents', title: 'raw C loop, no events' },
  { id: 'samplerNoEvents', kind: 'child', mock: 'noEvents', title: 'sampler, own process, no events' },
];
/** Ratios reported: [sampler side, raw side]. */
const RATIOS = [
  ['sampler', 'raw'],
  ['samplerInProcess', 'raw'],
  ['samplerNoEvents', 'rawNoEvents'],
];

/** The median over rounds of one side's figure (the raw loop names its figures medianNs, p10Ns, ...). */
function medians(rounds, id, key) {
  return median(rounds.map((r) => r[id][key] ?? r[id][`${key}Ns`]));
}

async function comparePasses(ctx, mocks, s) {
  const rounds = [];
  const passes = Math.round(s.roundMs / s.intervalMs);
  for (let r = 0; r < s.rounds; r++) {
    // Alternate the order, so that a drift in the machine's load favours no side.
    const order = r % 2 === 0 ? SIDES : [...SIDES].reverse();
    const round = {};
    for (const side of order) {
      const mock = mocks[side.mock];
      round[side.id] =
        side.kind === 'raw'
          ? await rawRound(ctx, mock, { passes, intervalMs: s.intervalMs, warmupPasses: s.warmupPasses })
          : side.kind === 'child'
            ? await samplerChildRound(ctx, mock, s)
            : await samplerRound(ctx, mock, s);
    }
    round.ratios = Object.fromEntries(RATIOS.map(([a, b]) => [a, round[a].median / round[b].medianNs]));
    ctx.log(
      `  round ${r + 1}/${s.rounds}: ` +
        SIDES.map((side) => `${side.id} ${formatNs(round[side.id].median ?? round[side.id].medianNs)}`).join(', ') +
        `; ratios ${RATIOS.map(([a]) => round.ratios[a].toFixed(3)).join(' ')}`,
    );
    rounds.push(round);
  }
  // For context only: the C loop back to back (hot caches, no sleeping between passes).
  const backToBack = await rawRound(ctx, mocks.events, { passes: 2000, intervalMs: 0, warmupPasses: 20 });

  const sides = {};
  for (const side of SIDES) {
    sides[side.id] = {
      title: side.title,
      medianOfMediansNs: medians(rounds, side.id, 'median'),
      medianP10Ns: medians(rounds, side.id, 'p10'),
      medianP90Ns: medians(rounds, side.id, 'p90'),
      medianP99Ns: medians(rounds, side.id, 'p99'),
      medianMeanNs: medians(rounds, side.id, 'mean'),
    };
  }
  const ratios = {};
  for (const [a, b] of RATIOS) {
    const perRound = rounds.map((r) => r.ratios[a]);
    ratios[a] = {
      against: b,
      ratio: sides[a].medianOfMediansNs / sides[b].medianOfMediansNs,
      medianRoundRatio: median(perRound),
      // Interference from other work on the machine only ever adds time: the 10th percentiles are the
      // least disturbed figures, a cross-check on the medians when the machine is busy.
      ratioP10: sides[a].medianP10Ns / sides[b].medianP10Ns,
      roundRatioRange: [Math.min(...perRound), Math.max(...perRound)],
      overheadNsPerPass: sides[a].medianOfMediansNs - sides[b].medianOfMediansNs,
    };
  }
  // Both sides must have done the same work: same processes seen, utilization fresh on (nearly) every pass.
  const last = rounds.at(-1);
  const sameWork = {};
  for (const side of SIDES) {
    const r = last[side.id];
    sameWork[side.id] = {
      processes: r.processesLastPass,
      withSmUtil: r.processesWithSmUtilLastPass,
      freshUtilizationShare: r.freshUtilizationPasses / (side.kind === 'raw' ? r.passes : r.passesSeen),
      ...(side.kind === 'raw' ? { eventThread: r.eventThread } : { passesSeen: r.passesSeen, passesRun: r.passesRun }),
    };
  }
  const counts = Object.values(sameWork).map((w) => `${w.processes}/${w.withSmUtil}`);
  const eventThreads = { events: last.raw.eventThread === true, noEvents: last.rawNoEvents.eventThread === false };
  const ok = counts.every((c) => c === counts[0]) && eventThreads.events && eventThreads.noEvents;
  if (!ok) ctx.log(`core: WARNING: the sides did not do the same work: ${JSON.stringify(sameWork)}`);
  const headline = ratios.sampler;
  return {
    era: BENCH_ERA,
    intervalMs: s.intervalMs,
    roundMs: s.roundMs,
    passesPerRound: passes,
    devices: DEVICES,
    processesPerDevice: PROCESSES_PER_DEVICE,
    rounds,
    sides,
    ratios,
    // The headline figures, under the names this suite has always used.
    raw: sides.raw,
    sampler: sides.sampler,
    ratio: headline.ratio,
    medianRoundRatio: headline.medianRoundRatio,
    ratioP10: headline.ratioP10,
    roundRatioRange: headline.roundRatioRange,
    overheadNsPerPass: headline.overheadNsPerPass,
    overheadNsPerDevice: headline.overheadNsPerPass / DEVICES,
    sameWork: { ok, sides: sameWork },
    rawBackToBack: backToBack,
    goal: { ratioAtMost: 1.1, met: headline.ratio <= 1.1 },
  };
}

/**
 * Checks, through the mock's call statistics, that the raw loop and the sampler make the same NVML calls
 * per pass on every driver era the mock imitates (each era exports other entry points: DeviceReader takes
 * the newest it finds and falls back, and so must the raw loop). Per era: the bench scenario on that era's
 * library, each side runs in a process of its own (a process loads one NVML library), the mock writes its
 * per-thread call counts twice, 20 passes apart, and the busiest thread's counts between the two are put
 * per pass (nvmlDeviceGetUtilizationRates is called once per device per pass on both sides).
 */
async function compareCalls(ctx, s) {
  const { readMockStats, createMockNvml, MOCK_ERAS } = ctx.testing;
  const busiestThread = (stats) =>
    Object.entries(stats.callsByThread).sort(
      ([, a], [, b]) => Object.values(b).reduce((x, y) => x + y, 0) - Object.values(a).reduce((x, y) => x + y, 0),
    )[0];
  // Calls per pass between two statistics of the same process: what start-up and set-up called (NVML
  // initialization, handles, the identity, the event watcher's registration, a fall-back's first refused
  // call) cancels out.
  const perPass = (before, after) => {
    const [thread, calls] = busiestThread(after);
    const earlier = before.callsByThread[thread] ?? {};
    const passesOf = (c) => (c.nvmlDeviceGetUtilizationRates ?? 0) / DEVICES;
    const passes = passesOf(calls) - passesOf(earlier);
    const counts = {};
    for (const [fn, n] of Object.entries(calls)) {
      // Rounded: the statistics may be written in the middle of a pass.
      const perPassCount = Math.round((n - (earlier[fn] ?? 0)) / passes);
      if (perPassCount >= 1) counts[fn] = perPassCount;
    }
    return { thread, passes: Math.round(passes), counts };
  };
  // Asks for the statistics (a loaded machine can start a child late, and a request written before the
  // child's mock opened the control file is not seen: ask again) until the busiest thread has made a few
  // passes, and again PASSES passes later; then stops the child.
  const PASSES = 20;
  const countCalls = async (mock, name, child) => {
    const exited = new Promise((resolve) => child.once('exit', resolve));
    const path = join(ctx.tmpdir, `vramguard-bench-stats-${process.pid}-${name}.json`);
    const passesIn = (stats) => (busiestThread(stats)[1].nvmlDeviceGetUtilizationRates ?? 0) / DEVICES;
    try {
      const deadline = Date.now() + 15_000;
      let before;
      for (;;) {
        if (child.exitCode !== null) throw new Error(`bench: ${name} exited (${child.exitCode}) before ${PASSES} passes`);
        if (Date.now() > deadline) throw new Error(`bench: ${name}: no call statistics of ${PASSES} passes in 15 s`);
        await sleep((before ? PASSES : 5) * s.intervalMs);
        mock.control.requestStats(path);
        let stats;
        const asked = Date.now();
        while ((stats = readMockStats(path)) === undefined && Date.now() - asked < 1000) await sleep(5);
        if (stats === undefined) continue;
        if (!before) {
          if (passesIn(stats) >= 3) before = stats;
        } else if (passesIn(stats) - passesIn(before) >= PASSES) {
          return perPass(before, stats);
        }
      }
    } finally {
      rmSync(path, { force: true });
      child.kill('SIGTERM');
      await exited;
    }
  };
  const eras = [];
  for (const era of MOCK_ERAS) {
    const mock = createMockNvml({ ...benchScenario(ctx.testing), era });
    try {
      const rawArgs = [mock.libraryPath, '--passes', '100000', '--warmup', '0', '--interval-ms', String(s.intervalMs)];
      const raw = await countCalls(mock, `raw-${era}`, spawn(ctx.rawLoopPath, rawArgs, { env: { ...process.env, ...mock.env }, stdio: 'ignore' }));
      const childArgs = [join(ctx.root, 'bench', 'lib', 'sampler-child.cjs'), String(s.intervalMs), '60000'];
      const childEnv = { ...process.env, ...mock.env, VRAMGUARD_ENTRY: join(ctx.root, 'dist', 'cjs', 'index.js') };
      const native = await countCalls(mock, `sampler-${era}`, spawn(process.execPath, childArgs, { env: childEnv, stdio: ['ignore', 'ignore', 'inherit'] }));
      const functions = [...new Set([...Object.keys(raw.counts), ...Object.keys(native.counts)])].sort();
      const table = functions.map((fn) => ({ function: fn, raw: raw.counts[fn] ?? 0, sampler: native.counts[fn] ?? 0 }));
      const ok = table.every((row) => row.raw === row.sampler);
      if (!ok) ctx.log(`core: WARNING: era ${era}: the raw loop and the sampler do not make the same calls per pass`);
      eras.push({ era, ok, rawThread: raw.thread, samplerThread: native.thread, passes: { raw: raw.passes, sampler: native.passes }, perPass: table });
    } finally {
      mock.cleanup();
    }
  }
  return { ok: eras.every((e) => e.ok), eras };
}

// ---- 2. latest() cached ----------------------------------------------------------------------------

async function cachedLatest(ctx, mock, s) {
  const { Sampler } = ctx.vramguard;
  // A long interval: nothing new is published while we measure, so every call takes the cached path.
  const sampler = new Sampler({ interval: '60s', libraryPath: mock.libraryPath }).start();
  try {
    await until(() => sampler.latest() !== null, 'the first pass');
    const first = sampler.latest();
    const perCallNs = [];
    for (let r = -1; r < s.latestRounds; r++) {
      let snapshot;
      const t0 = process.hrtime.bigint();
      for (let i = 0; i < s.latestCalls; i++) snapshot = sampler.latest();
      const t1 = process.hrtime.bigint();
      if (snapshot !== first) throw new Error('bench: latest() returned a new snapshot; the cached path was not measured');
      if (r >= 0) perCallNs.push(Number(t1 - t0) / s.latestCalls); // round -1 warms the JIT up
    }
    return { callsPerRound: s.latestCalls, rounds: perCallNs.length, perCallNs, ...summarize(perCallNs) };
  } finally {
    sampler.close();
  }
}

// ---- 3. conversion of a fresh snapshot -------------------------------------------------------------

async function conversion(ctx, mock, s) {
  // The native sampler as src/ uses it: latest() with no known sequence converts the snapshot every time.
  const native = ctx.nvml.createNativeSampler({ intervalMs: 60_000, libraryPath: mock.libraryPath }, () => {});
  const started = native.start();
  if (!started.ok) throw new Error(`bench: native sampler did not start: ${started.reason}`);
  try {
    await until(() => native.publishedSequence() > 0, 'the first pass');
    const sample = native.latest();
    const seen = countProcesses(sample.devices);
    // Calibrate: calls per round so that a round takes about convertRoundMs.
    let calls = 0;
    const t = process.hrtime.bigint();
    while (process.hrtime.bigint() - t < 20_000_000n) {
      native.latest();
      calls++;
    }
    const perRound = Math.max(10, Math.round((calls * s.convertRoundMs) / 20));
    const perCallNs = [];
    for (let r = 0; r < s.convertRounds; r++) {
      let snapshot;
      const t0 = process.hrtime.bigint();
      for (let i = 0; i < perRound; i++) snapshot = native.latest();
      const t1 = process.hrtime.bigint();
      if (!snapshot || snapshot.devices.length !== DEVICES) throw new Error('bench: unexpected snapshot');
      perCallNs.push(Number(t1 - t0) / perRound);
    }
    const summary = summarize(perCallNs);
    return {
      callsPerRound: perRound,
      rounds: perCallNs.length,
      perCallNs,
      ...summary,
      perDeviceNs: summary.median / DEVICES,
      devices: sample.devices.length,
      processes: seen.processes,
      jsonBytes: JSON.stringify(sample).length,
    };
  } finally {
    native.stop();
  }
}

// ---- The section ------------------------------------------------------------------------------------

export async function run(ctx) {
  const s = settings(ctx.quick);
  const scenario = { ...benchScenario(ctx.testing), era: BENCH_ERA };
  const mock = ctx.testing.createMockNvml(scenario);
  // The same with critical XID events unsupported: neither side starts an event-waiting thread.
  const noEvents = ctx.testing.createMockNvml({
    ...scenario,
    errors: [{ function: 'nvmlDeviceGetSupportedEventTypes', return: 'NOT_SUPPORTED' }],
  });
  mock.activate();
  try {
    ctx.log(`core: ${s.rounds} rounds of ${s.roundMs} ms at a ${s.intervalMs} ms interval (raw C loop vs sampler)`);
    const passes = await comparePasses(ctx, { events: mock, noEvents }, s);
    ctx.log('core: checking both sides make the same NVML calls per pass on every driver era (mock call statistics)');
    passes.sameCalls = await compareCalls(ctx, s);
    ctx.log('core: latest() on the cached path');
    const latest = await cachedLatest(ctx, mock, s);
    ctx.log('core: converting a fresh snapshot');
    const convert = await conversion(ctx, mock, s);
    // The goal of issue 13: converting costs at most 3 raw passes (the C loop back to back, this run).
    convert.rawBackToBackNs = passes.rawBackToBack.medianNs;
    convert.ratioToRawPass = convert.median / passes.rawBackToBack.medianNs;
    convert.goal = { ratioToRawPassAtMost: 3, met: convert.ratioToRawPass <= 3 };
    return {
      id,
      title,
      results: { settings: s, passes, latest, convert },
      tables: tables(passes, latest, convert),
    };
  } finally {
    mock.cleanup();
    noEvents.cleanup();
  }
}

function tables(passes, latest, convert) {
  const ns = formatNs;
  const right = (title) => ({ title, align: 'right' });
  const perRound = {
    title: `Sampling pass, ${passes.devices} devices x ${passes.processesPerDevice} processes, every ${passes.intervalMs} ms, driver era ${passes.era} (per-round medians)`,
    columns: [{ title: 'round' }, ...SIDES.map((side) => right(side.title))],
    rows: passes.rounds.map((r, i) => [String(i + 1), ...SIDES.map((side) => ns(r[side.id].median ?? r[side.id].medianNs))]),
  };
  const sideRow = (id) => {
    const side = passes.sides[id];
    return [side.title, ns(side.medianP10Ns), ns(side.medianOfMediansNs), ns(side.medianP90Ns), ns(side.medianP99Ns), ns(side.medianMeanNs)];
  };
  const ratioLine = ([a, b]) => {
    const r = passes.ratios[a];
    return (
      `${passes.sides[a].title} / ${passes.sides[b].title}: ${r.ratio.toFixed(3)}, ratio of the p10s ${r.ratioP10.toFixed(3)}; ` +
      `per-round ratios: median ${r.medianRoundRatio.toFixed(3)}, range ${r.roundRatioRange.map((x) => x.toFixed(3)).join(' to ')}; ` +
      `overhead ${ns(r.overheadNsPerPass)} per pass`
    );
  };
  const era = passes.sameCalls.eras.find((e) => e.era === passes.era);
  const summary = {
    title: 'Sampling pass, medians of the round figures',
    columns: [{ title: 'measure' }, right('p10'), right('median'), right('p90'), right('p99'), right('mean')],
    rows: [
      ...SIDES.map((side) => sideRow(side.id)),
      ['raw C loop, back to back (context)', ns(passes.rawBackToBack.p10Ns), ns(passes.rawBackToBack.medianNs), ns(passes.rawBackToBack.p90Ns), ns(passes.rawBackToBack.p99Ns), ns(passes.rawBackToBack.meanNs)],
    ],
    footer: [
      `headline ratio sampler/raw (both in a process of their own): ${passes.ratio.toFixed(3)} (goal <= ${passes.goal.ratioAtMost}: ${passes.goal.met ? 'met' : 'NOT met'})`,
      ...RATIOS.map(ratioLine),
      `same work on every side: ${passes.sameWork.ok ? 'yes' : 'NO'} (processes / with SM utilization, last round: ` +
        Object.entries(passes.sameWork.sides)
          .map(([id, w]) => `${id} ${w.processes}/${w.withSmUtil}, fresh ${(w.freshUtilizationShare * 100).toFixed(0)}%`)
          .join('; ') +
        ')',
      `same NVML calls per pass (mock call statistics), per driver era: ` +
        passes.sameCalls.eras.map((e) => `${e.era} ${e.ok ? 'yes' : 'NO'}`).join(', '),
      ...passes.sameCalls.eras
        .filter((e) => e === era || !e.ok)
        .map(
          (e) =>
            `  era ${e.era} calls per pass (raw / sampler): ` +
            e.perPass.map((row) => `${row.function.replace(/^nvmlDevice(Get)?/, '')} ${row.raw}/${row.sampler}`).join(', '),
        ),
    ],
  };
  const js = {
    title: 'JavaScript side',
    columns: [{ title: 'measure' }, right('median'), right('min'), right('max'), { title: 'detail' }],
    rows: [
      ['sampler.latest(), nothing new (cached)', ns(latest.median), ns(latest.min), ns(latest.max), `${latest.rounds} rounds x ${latest.callsPerRound} calls`],
      [
        `fresh snapshot to JS (${convert.devices} devices, ${convert.processes} processes)`,
        ns(convert.median),
        ns(convert.min),
        ns(convert.max),
        `${ns(convert.perDeviceNs)}/device; ${convert.rounds} rounds x ${convert.callsPerRound} calls`,
      ],
    ],
    footer: [
      `fresh snapshot to JS / raw C pass back to back (${ns(convert.rawBackToBackNs)}, same run): ${convert.ratioToRawPass.toFixed(2)} ` +
        `(goal <= ${convert.goal.ratioToRawPassAtMost}: ${convert.goal.met ? 'met' : 'NOT met'})`,
      `at a ${passes.intervalMs} ms interval, converting every pass costs ${((convert.median / (passes.intervalMs * 1e6)) * 100).toFixed(2)}% of the JS thread`,
    ],
  };
  return [perRound, summary, js];
}
