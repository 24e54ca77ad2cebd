// Runtime adapter benchmark (issue "Real model runtimes"): whole load → context → generate → dispose
// cycles of node-llama-cpp on the CPU with the generated tiny GGUF, bare and through
// vramguard/node-llama-cpp (admission on the GGUF insights estimate, commit, use, unload and removal
// from a guard on its ledger). Goal: the guard adds at most 1% wall time to a cycle.
//
// Two models, both generated (no model hub): the 513 KiB test model, whose whole cycle (about 25 ms) is
// the worst case for a relative figure, and a 28 MB one (8 layers), still far smaller than any real
// model. Two measurements for each, because a cycle on a shared machine varies by tens of milliseconds
// while 1 % of a tiny-model cycle is a quarter of one:
// 1. The adapter's own time: the same guarded cycle with node-llama-cpp's loads, context creation and
//    disposes answered at once (a stand-in runtime; the estimates still come from the real file and
//    the real node-llama-cpp), against the same stand-in calls bare, in thousands of alternating pairs.
//    The guarded cycle runs the adapter's code and the guard's between the runtime's calls, and
//    passes the runtime the same options, so this is what it adds to a cycle. The verdict is on it:
//    met when the bootstrap 95 % interval of its median is at or under 1 % of the bare real cycle.
// 2. Whole real cycles, bare and guarded, with a bare-against-bare control (A/A) in the same rounds:
//    three cycles per round in a rotating order. The control shows what the machine alone does to a
//    pair difference; the whole-cycle difference is reported beside it as a check (a difference
//    clearly beyond the control's would mean the adapter costs more than its own time).
// The load average before and after is part of the result.
//   node bench/run.mjs runtimes [--quick]
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';

import { median, summarize } from './lib/stats.mjs';

const { seededRandom } = createRequire(import.meta.url)('../scripts/seeded-random.cjs');

export const id = 'runtimes';
export const title = 'Runtime adapters: node-llama-cpp cycles, bare and through the guard';

const TOKENS = 16;

function settings(quick) {
  return quick ? { warmup: 2, rounds: [12, 6], ownPairs: 200 } : { warmup: 10, rounds: [300, 150], ownPairs: 5000 };
}

/** The models: the test model, and one of the same shape 50 times larger. */
const MODELS = [
  { name: 'tiny', config: {} },
  { name: 'small', config: { embedding: 256, feedForward: 768, layers: 8, heads: 8, headsKv: 8 } },
];

/** Every order of three: round i runs the cycles in ORDERS[i % 6], so no cycle is favoured by its place. */
const ORDERS = [[0, 1, 2], [1, 2, 0], [2, 0, 1], [0, 2, 1], [2, 1, 0], [1, 0, 2]];

/**
 * A stand-in for node-llama-cpp's Llama: loads, contexts and disposes answer at once; everything else
 * (the estimates' GGUF insights) is the real one.
 */
function instantRuntime(llama, modelBytes) {
  const context = { contextSize: 256, dispose: async () => undefined };
  const model = { size: modelBytes, gpuLayers: 0, createContext: async () => context, dispose: async () => undefined };
  const proxy = new Proxy(llama, {
    get(target, key) {
      if (key === 'loadModel') return async () => model;
      const value = Reflect.get(target, key, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
  return { llama: proxy, model, context };
}

/** A bootstrap 95% interval of the median of `values` (seeded: the same data give the same interval). */
export function medianInterval(values, resamples = 2000, seed = 0x5eed) {
  const random = seededRandom(seed);
  const medians = new Float64Array(resamples);
  const sample = new Float64Array(values.length);
  for (let r = 0; r < resamples; r += 1) {
    for (let i = 0; i < values.length; i += 1) sample[i] = values[Math.floor(random() * values.length)];
    medians[r] = median(sample);
  }
  medians.sort();
  return { low: medians[Math.floor(0.025 * resamples)], high: medians[Math.ceil(0.975 * resamples) - 1] };
}

async function generate(nodeLlamaCpp, context) {
  const sequence = context.getSequence();
  try {
    await new nodeLlamaCpp.LlamaCompletion({ contextSequence: sequence }).generateCompletion('the cat and the dog', { maxTokens: TOKENS });
  } finally {
    sequence.dispose();
  }
}

export async function run(ctx) {
  const s = settings(ctx.quick);
  const require = createRequire(import.meta.url);
  const nodeLlamaCpp = await import('node-llama-cpp');
  const { writeTinyGguf, TINY_GGUF } = await import('../scripts/tiny-gguf.mjs');
  const { LlamaGuard } = require('../dist/cjs/adapters/node-llama-cpp.js');
  const { VramGuard } = ctx.vramguard;
  const dir = mkdtempSync(join(ctx.tmpdir, 'vramguard-bench-gguf-'));
  const llama = await nodeLlamaCpp.getLlama({ gpu: false, build: 'never', maxThreads: 2, logLevel: nodeLlamaCpp.LlamaLogLevel.error });
  // Guards on their ledger (no NVML library at this path): what is measured is the adapter and the guard.
  const ledgerGuard = () => new VramGuard({ quota: { hard: 2 ** 40 }, idleTtl: null, libraryPath: join(dir, 'no-libnvidia-ml.so.1') });
  const timed = async (fn) => {
    const started = performance.now();
    await fn();
    return performance.now() - started;
  };
  const loadBefore = loadavg();
  const results = {};
  const tables = [];
  try {
    for (const [m, spec] of MODELS.entries()) {
      const modelPath = join(dir, `${spec.name}-llama.gguf`);
      const modelBytes = writeTinyGguf(modelPath, { ...TINY_GGUF, ...spec.config });
      const rounds = s.rounds[m];
      const guard = ledgerGuard();
      const runtime = new LlamaGuard({ guard, llama });
      const bare = async () => {
        const model = await llama.loadModel({ modelPath });
        const context = await model.createContext({ contextSize: 256, threads: 1 });
        await generate(nodeLlamaCpp, context);
        await context.dispose();
        await model.dispose();
      };
      const guarded = async () => {
        const model = await runtime.loadModel({ id: 'bench', modelPath });
        const context = await model.createContext({ contextSize: 256, threads: 1 });
        await context.use((c) => generate(nodeLlamaCpp, c));
        await model.close();
      };
      // The same two cycles with the stand-in runtime: what is left is the adapter's and the guard's time.
      const instant = instantRuntime(llama, modelBytes);
      const ownGuard = ledgerGuard();
      const ownRuntime = new LlamaGuard({ guard: ownGuard, llama: instant.llama });
      const noGeneration = async () => undefined;
      const bareInstant = async () => {
        const model = await instant.llama.loadModel({ modelPath });
        const context = await model.createContext({ contextSize: 256, threads: 1 });
        await noGeneration(context);
        await context.dispose();
        await model.dispose();
      };
      const guardedInstant = async () => {
        const model = await ownRuntime.loadModel({ id: 'bench', modelPath });
        const context = await model.createContext({ contextSize: 256, threads: 1 });
        await context.use(noGeneration);
        await model.close();
      };
      try {
        ctx.log(`runtimes, ${spec.name} model (${(modelBytes / 2 ** 20).toFixed(1)} MiB): ${s.warmup} warm-up cycles each, ${rounds} rounds of bare, guarded and a second bare (rotating order), ${s.ownPairs} pairs with a stand-in runtime`);
        for (let i = 0; i < s.warmup; i += 1) {
          await bare();
          await guarded();
        }
        const bareMs = [];
        const guardedMs = [];
        const differences = [];
        const controlDifferences = [];
        const cycles = [bare, guarded, bare];
        for (let i = 0; i < rounds; i += 1) {
          const took = [0, 0, 0];
          for (const which of ORDERS[i % ORDERS.length]) took[which] = await timed(cycles[which]);
          bareMs.push(took[0]);
          guardedMs.push(took[1]);
          differences.push(took[1] - took[0]);
          controlDifferences.push(took[2] - took[0]);
        }
        const ownDifferences = [];
        for (let i = 0; i < 200; i += 1) {
          await bareInstant();
          await guardedInstant();
        }
        for (let i = 0; i < s.ownPairs; i += 1) {
          // Alternate which goes first, so drift and caches favour neither.
          const [first, second] = i % 2 ? [guardedInstant, bareInstant] : [bareInstant, guardedInstant];
          const a = await timed(first);
          const b = await timed(second);
          ownDifferences.push(i % 2 ? a - b : b - a);
        }
        const result = summarizeModel({ bareMs, guardedMs, differences, controlDifferences, ownDifferences });
        results[spec.name] = { ...result, modelBytes, rounds, ownPairs: s.ownPairs };
        tables.push(modelTable(spec.name, modelBytes, rounds, s.ownPairs, result));
      } finally {
        await runtime.close();
        await guard.close();
        await ownRuntime.close();
        await ownGuard.close();
      }
    }
    const loadAfter = loadavg();
    const load = (l) => l.map((v) => v.toFixed(1)).join(' / ');
    tables.at(-1).footer.push(`load average (1/5/15 min) ${load(loadBefore)} before, ${load(loadAfter)} after, on ${cpus().length} cores`);
    return { id, title, results: { ...results, loadBefore, loadAfter, tokens: TOKENS }, tables };
  } finally {
    await llama.dispose();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The figures and verdicts of one model's run. */
function summarizeModel({ bareMs, guardedMs, differences, controlDifferences, ownDifferences }) {
  const bare = summarize(bareMs);
  const guarded = summarize(guardedMs);
  const own = summarize(ownDifferences);
  const interval = medianInterval(differences);
  const controlInterval = medianInterval(controlDifferences);
  const ownInterval = medianInterval(ownDifferences);
  const limit = 0.01 * bare.median;
  const verdictOf = (i) => (i.high <= limit ? 'met' : i.low > limit ? 'NOT met' : 'undecided (the interval straddles 1 %)');
  return {
    bare,
    guarded,
    differenceMs: summarize(differences),
    differenceInterval95Ms: interval,
    controlDifferenceMs: summarize(controlDifferences),
    controlInterval95Ms: controlInterval,
    ownMs: own,
    ownInterval95Ms: ownInterval,
    ratio: guarded.median / bare.median,
    // On the adapter's own time (the verdict), and on the whole cycles less what the control shows
    // the machine does to a pair difference (the check).
    verdict: verdictOf(ownInterval),
    wholeCycleVerdict: verdictOf({ low: interval.low - controlInterval.high, high: interval.high - controlInterval.low }),
  };
}

function modelTable(name, modelBytes, rounds, ownPairs, r) {
  const ms = (v) => `${v.toFixed(2)} ms`;
  const us = (v) => `${(v * 1000).toFixed(1)} µs`;
  const pct = (v) => `${((v / r.bare.median) * 100).toFixed(2)} %`;
  const row = (label, x, f) => [label, f(x.p10), `**${f(x.median)}**`, f(x.p90), f(x.mean)];
  return {
    title: `${name} model (${(modelBytes / 2 ** 20).toFixed(1)} MiB): loadModel + createContext(256) + ${TOKENS} tokens + dispose, CPU, 2 threads, ${rounds} rounds`,
    columns: [{ title: 'path' }, ...['p10', 'median', 'p90', 'mean'].map((t) => ({ title: t, align: 'right' }))],
    rows: [
      row('bare node-llama-cpp', r.bare, ms),
      row('through vramguard/node-llama-cpp', r.guarded, ms),
      row('guarded − bare, within a round', r.differenceMs, ms),
      row('control: bare − bare, within a round', r.controlDifferenceMs, ms),
      row(`the adapter's own time (stand-in runtime, ${ownPairs} pairs)`, r.ownMs, us),
    ],
    footer: [
      `the adapter's own time: median ${us(r.ownMs.median)} = ${pct(r.ownMs.median)} of a bare cycle, bootstrap 95 % interval ${us(r.ownInterval95Ms.low)} .. ${us(r.ownInterval95Ms.high)} (${pct(r.ownInterval95Ms.low)} .. ${pct(r.ownInterval95Ms.high)}): goal <= 1 % ${r.verdict}`,
      `whole cycles: guarded − bare median ${ms(r.differenceMs.median)} (${pct(r.differenceMs.median)}), interval ${ms(r.differenceInterval95Ms.low)} .. ${ms(r.differenceInterval95Ms.high)}; control bare − bare median ${ms(r.controlDifferenceMs.median)}, interval ${ms(r.controlInterval95Ms.low)} .. ${ms(r.controlInterval95Ms.high)}; ratio of medians ${r.ratio.toFixed(4)}`,
      `whole cycles less the control (intervals subtracted): goal <= 1 % ${r.wholeCycleVerdict}`,
    ],
  };
}
