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

import { benchScenario, DEVICES, PROCESSES_PER_DEVICE } from './lib/scenario.mjs';
import { median, summarize } from './lib/stats.mjs';
import { formatNs } from './lib/table.mjs';

const execFileAsync = promisify(execFile);

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

function countProcesses(devices) {
  let processes = 0;
  let withSmUtil = 0;
  for (const device of devices) {
    for (const p of device.processes ?? []) {
      processes++;
      if (p.smUtilizationRatio > 0) withSmUtil++;
    }
  }
  return { processes, withSmUtil };
}

// ---- 1. passes --------------------------------------------------------------------------------------

/** The raw C loop, paced like the sampler, in its own process. Figures in ns. */
async function rawRound(ctx, mock, { passes, intervalMs, warmupPasses }) {
  const args = [mock.libraryPath, '--passes', String(passes), '--warmup', String(warmupPasses), '--interval-ms', String(intervalMs)];
  const { stdout } = await execFileAsync(ctx.rawLoopPath, args, { env: { ...process.env, ...mock.env } });
  return JSON.parse(stdout);
}

/**
 * A Sampler at intervalMs for roundMs; passDurationMs of every snapshot seen through the 'sample' event
 * (the first warmupPasses are left out: the first pass also acquires handles and reads identities).
 */
async function samplerRound(ctx, mock, { roundMs, intervalMs, warmupPasses }) {
  const { Sampler } = ctx.vramguard;
  const sampler = new Sampler({ interval: intervalMs, libraryPath: mock.libraryPath });
  const durationsNs = [];
  let lastSequence = 0;
  let last;
  let freshUtilizationPasses = 0;
  sampler.on('sample', (snapshot) => {
    if (snapshot.sequence === lastSequence) return;
    lastSequence = snapshot.sequence;
    last = snapshot;
    if (snapshot.sequence <= warmupPasses) return;
    durationsNs.push(snapshot.passDurationMs * 1e6);
    if (snapshot.devices[0]?.processUtilizationFresh) freshUtilizationPasses++;
  });
  sampler.start();
  await sleep(roundMs);
  sampler.close();
  const seen = countProcesses(last?.devices ?? []);
  return {
    ...summarize(durationsNs),
    passesSeen: durationsNs.length,
    passesRun: lastSequence - warmupPasses,
    devices: last?.devices.length ?? 0,
    processesLastPass: seen.processes,
    processesWithSmUtilLastPass: seen.withSmUtil,
    freshUtilizationPasses,
  };
}

async function comparePasses(ctx, mock, s) {
  const rounds = [];
  const passes = Math.round(s.roundMs / s.intervalMs);
  for (let r = 0; r < s.rounds; r++) {
    // Alternate which side goes first, so that a drift in the machine's load favours neither.
    const order = r % 2 === 0 ? ['raw', 'sampler'] : ['sampler', 'raw'];
    const round = {};
    for (const side of order) {
      round[side] =
        side === 'raw'
          ? await rawRound(ctx, mock, { passes, intervalMs: s.intervalMs, warmupPasses: s.warmupPasses })
          : await samplerRound(ctx, mock, s);
    }
    round.ratio = round.sampler.median / round.raw.medianNs;
    ctx.log(
      `  round ${r + 1}/${s.rounds}: raw ${formatNs(round.raw.medianNs)}, sampler ${formatNs(round.sampler.median)}, ` +
        `ratio ${round.ratio.toFixed(3)} (sampler saw ${round.sampler.passesSeen}/${round.sampler.passesRun} passes)`,
    );
    rounds.push(round);
  }
  // For context only: the C loop back to back (hot caches, no sleeping between passes).
  const backToBack = await rawRound(ctx, mock, { passes: 2000, intervalMs: 0, warmupPasses: 20 });

  const raw = {
    medianOfMediansNs: median(rounds.map((r) => r.raw.medianNs)),
    medianP10Ns: median(rounds.map((r) => r.raw.p10Ns)),
    medianP90Ns: median(rounds.map((r) => r.raw.p90Ns)),
    medianP99Ns: median(rounds.map((r) => r.raw.p99Ns)),
    medianMeanNs: median(rounds.map((r) => r.raw.meanNs)),
  };
  const sampler = {
    medianOfMediansNs: median(rounds.map((r) => r.sampler.median)),
    medianP10Ns: median(rounds.map((r) => r.sampler.p10)),
    medianP90Ns: median(rounds.map((r) => r.sampler.p90)),
    medianP99Ns: median(rounds.map((r) => r.sampler.p99)),
    medianMeanNs: median(rounds.map((r) => r.sampler.mean)),
  };
  const ratio = sampler.medianOfMediansNs / raw.medianOfMediansNs;
  const overheadNs = sampler.medianOfMediansNs - raw.medianOfMediansNs;
  const ratios = rounds.map((r) => r.ratio);
  // Both sides must have done the same work: same processes seen, utilization fresh on (nearly) every pass.
  const last = rounds.at(-1);
  const sameWork = {
    rawProcesses: last.raw.processesLastPass,
    samplerProcesses: last.sampler.processesLastPass,
    rawWithSmUtil: last.raw.processesWithSmUtilLastPass,
    samplerWithSmUtil: last.sampler.processesWithSmUtilLastPass,
    rawFreshUtilizationShare: last.raw.freshUtilizationPasses / last.raw.passes,
    samplerFreshUtilizationShare: last.sampler.freshUtilizationPasses / last.sampler.passesSeen,
  };
  sameWork.ok =
    sameWork.rawProcesses === sameWork.samplerProcesses && sameWork.rawWithSmUtil === sameWork.samplerWithSmUtil;
  if (!sameWork.ok) ctx.log(`core: WARNING: the two sides did not see the same processes: ${JSON.stringify(sameWork)}`);
  return {
    era: BENCH_ERA,
    intervalMs: s.intervalMs,
    roundMs: s.roundMs,
    passesPerRound: passes,
    devices: DEVICES,
    processesPerDevice: PROCESSES_PER_DEVICE,
    rounds,
    raw,
    sampler,
    ratio,
    medianRoundRatio: median(ratios),
    // Interference from other work on the machine only ever adds time: the 10th percentiles are the
    // least disturbed figures, a cross-check on the medians when the machine is busy.
    ratioP10: sampler.medianP10Ns / raw.medianP10Ns,
    roundRatioRange: [Math.min(...ratios), Math.max(...ratios)],
    sameWork,
    overheadNsPerPass: overheadNs,
    overheadNsPerDevice: overheadNs / DEVICES,
    rawBackToBack: backToBack,
    goal: { ratioAtMost: 1.1, met: ratio <= 1.1 },
  };
}

/**
 * Checks, through the mock's call statistics, that the raw loop and the sampler make the same NVML calls
 * per pass on every driver era the mock imitates (each era exports other entry points: DeviceReader takes
 * the newest it finds and falls back, and so must the raw loop). Per era: the bench scenario on that era's
 * library, each side runs a few passes, the mock writes its per-thread call counts, and the counts are
 * put per pass (nvmlDeviceGetUtilizationRates is called once per device per pass on both sides). Calls
 * made less than once per pass (handles, the identity, set-up, a fall-back's first refused call) are left
 * out. The sampler runs in a child process per era: a process loads one NVML library.
 */
async function compareCalls(ctx, s) {
  const { readMockStats, createMockNvml, MOCK_ERAS } = ctx.testing;
  const busiestThread = (stats) =>
    Object.entries(stats.callsByThread).sort(
      ([, a], [, b]) => Object.values(b).reduce((x, y) => x + y, 0) - Object.values(a).reduce((x, y) => x + y, 0),
    )[0];
  const perPass = (stats) => {
    const [thread, calls] = busiestThread(stats);
    const passes = (calls.nvmlDeviceGetUtilizationRates ?? 0) / DEVICES;
    const counts = {};
    for (const [fn, n] of Object.entries(calls)) {
      // Rounded: the statistics may be written in the middle of a pass.
      if (Math.round(n / passes) >= 1) counts[fn] = Math.round(n / passes);
    }
    return { thread, passes: Math.round(passes), counts };
  };
  // Asks for the statistics until the busiest thread has made enough passes (a loaded machine can start
  // a child late), then stops the child.
  const PASSES = 20;
  const countCalls = async (mock, name, child) => {
    const exited = new Promise((resolve) => child.once('exit', resolve));
    const path = join(ctx.tmpdir, `vramguard-bench-stats-${process.pid}-${name}.json`);
    try {
      const deadline = Date.now() + 15_000;
      for (;;) {
        if (child.exitCode !== null) throw new Error(`bench: ${name} exited (${child.exitCode}) before ${PASSES} passes`);
        if (Date.now() > deadline) throw new Error(`bench: ${name}: no call statistics of ${PASSES} passes in 15 s`);
        await sleep(PASSES * s.intervalMs);
        // A request written before the child's mock opened the control file is not seen: ask again.
        mock.control.requestStats(path);
        let stats;
        const asked = Date.now();
        while ((stats = readMockStats(path)) === undefined && Date.now() - asked < 1000) await sleep(5);
        const counted = stats === undefined ? undefined : perPass(stats);
        if (counted !== undefined && counted.passes >= PASSES) return counted;
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
  const mock = ctx.testing.createMockNvml({ ...benchScenario(ctx.testing), era: BENCH_ERA });
  mock.activate();
  try {
    ctx.log(`core: ${s.rounds} rounds of ${s.roundMs} ms at a ${s.intervalMs} ms interval (raw C loop vs sampler)`);
    const passes = await comparePasses(ctx, mock, s);
    ctx.log('core: checking both sides make the same NVML calls per pass (mock call statistics)');
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
  }
}

function tables(passes, latest, convert) {
  const ns = formatNs;
  const right = (title) => ({ title, align: 'right' });
  const perRound = {
    title: `Sampling pass, ${passes.devices} devices x ${passes.processesPerDevice} processes, every ${passes.intervalMs} ms, driver era ${passes.era} (per-round medians)`,
    columns: [{ title: 'round' }, right('raw C loop'), right('sampler'), right('ratio'), right('sampler passes seen')],
    rows: passes.rounds.map((r, i) => [
      String(i + 1),
      ns(r.raw.medianNs),
      ns(r.sampler.median),
      r.ratio.toFixed(3),
      `${r.sampler.passesSeen}/${r.sampler.passesRun}`,
    ]),
  };
  const summary = {
    title: 'Sampling pass, medians of the round figures',
    columns: [{ title: 'measure' }, right('p10'), right('median'), right('p90'), right('p99'), right('mean')],
    rows: [
      ['raw C loop (paced)', ns(passes.raw.medianP10Ns), ns(passes.raw.medianOfMediansNs), ns(passes.raw.medianP90Ns), ns(passes.raw.medianP99Ns), ns(passes.raw.medianMeanNs)],
      ['sampler passDurationMs', ns(passes.sampler.medianP10Ns), ns(passes.sampler.medianOfMediansNs), ns(passes.sampler.medianP90Ns), ns(passes.sampler.medianP99Ns), ns(passes.sampler.medianMeanNs)],
      ['raw C loop, back to back (context)', ns(passes.rawBackToBack.p10Ns), ns(passes.rawBackToBack.medianNs), ns(passes.rawBackToBack.p90Ns), ns(passes.rawBackToBack.p99Ns), ns(passes.rawBackToBack.meanNs)],
    ],
    footer: [
      `ratio sampler/raw: ${passes.ratio.toFixed(3)} (goal <= ${passes.goal.ratioAtMost}: ${passes.goal.met ? 'met' : 'NOT met'}); ` +
        `per-round ratios: median ${passes.medianRoundRatio.toFixed(3)}, range ${passes.roundRatioRange.map((r) => r.toFixed(3)).join(' to ')}`,
      `ratio of the p10s (least disturbed by other load): ${passes.ratioP10.toFixed(3)}`,
      `overhead: ${ns(passes.overheadNsPerPass)} per pass, ${ns(passes.overheadNsPerDevice)} per device`,
      `same work: ${passes.sameWork.rawProcesses} / ${passes.sameWork.samplerProcesses} processes (raw / sampler), ` +
        `${passes.sameWork.rawWithSmUtil} / ${passes.sameWork.samplerWithSmUtil} with SM utilization, fresh utilization on ` +
        `${(passes.sameWork.rawFreshUtilizationShare * 100).toFixed(0)}% / ${(passes.sameWork.samplerFreshUtilizationShare * 100).toFixed(0)}% of passes`,
      `same NVML calls per pass (mock call statistics), per driver era: ` +
        passes.sameCalls.eras.map((e) => `${e.era} ${e.ok ? 'yes' : 'NO'}`).join(', '),
      ...passes.sameCalls.eras
        .filter((e) => e.era === BENCH_ERA || !e.ok)
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
