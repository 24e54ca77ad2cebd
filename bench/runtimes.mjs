// Runtime adapter benchmark (issue "Real model runtimes"): whole load → context → generate → dispose
// cycles of node-llama-cpp on the CPU with the generated tiny GGUF, bare and through
// vramguard/node-llama-cpp (admission on the GGUF insights estimate, commit, use, unload and removal
// from a guard on its ledger). Goal: the guard adds at most 1% wall time to a cycle.
//
// Three models, all generated (no model hub): the 513 KiB test model, whose whole cycle (about 25 ms)
// is the worst case for a relative figure; a 28 MB one (8 layers, 256 wide), about the size of the
// CPU's last-level cache; and a 160 MB one (12 layers, 512 wide), the size of the smallest real models
// people serve (a 135M-parameter model quantized to 8 bits). What the guard adds is time, not work
// proportional to the model: the three show how it behaves once the runtime's calls evict it from the
// caches. Rounds of three cycles, bare, guarded and bare again, in a rotating order. Every call into
// node-llama-cpp (loadModel, createContext, the generation, both disposes) is timed, in both paths:
// - the verdict is on the time a guarded cycle spends outside node-llama-cpp's calls, less what a bare
//   cycle spends there (the harness), per round: the adapter's and the guard's work as it runs between
//   real calls (cold caches included), exact to the microsecond however noisy the machine. Met when the
//   bootstrap 95 % interval of its median is at or under 1 % of the bare cycle's median;
// - the check is on the time inside node-llama-cpp's calls: the guarded cycle's less the bare cycle's
//   against the second bare cycle's less the first (the control), to show the adapter does not make
//   the runtime's own work slower (same options passed, nothing running beside it);
// - the whole cycles, and their difference beside the control's, are reported for completeness: on a
//   shared machine their spread is tens of milliseconds.
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
  return quick ? { warmup: 2, rounds: [12, 6, 3] } : { warmup: 10, rounds: [300, 150, 60] };
}

/** The models: the test model, and two of the same architecture about 50 and 300 times larger. */
const MODELS = [
  { name: 'tiny', config: {} },
  { name: 'small', config: { embedding: 256, feedForward: 768, layers: 8, heads: 8, headsKv: 8 } },
  { name: 'medium', config: { embedding: 512, feedForward: 1536, layers: 12, heads: 8, headsKv: 8 } },
];

/** Every order of three: round i runs the cycles in ORDERS[i % 6], so no cycle is favoured by its place. */
const ORDERS = [[0, 1, 2], [1, 2, 0], [2, 0, 1], [0, 2, 1], [2, 1, 0], [1, 0, 2]];

/**
 * node-llama-cpp's Llama with every call a cycle makes into it timed (loadModel, and on what it returns,
 * createContext, dispose and the context's dispose); `clock.inside` adds up their durations.
 */
function timedRuntime(llama) {
  const clock = { inside: 0 };
  const timed = async (call) => {
    const started = performance.now();
    try {
      return await call();
    } finally {
      clock.inside += performance.now() - started;
    }
  };
  const timeContext = (context) => {
    const dispose = context.dispose.bind(context);
    context.dispose = () => timed(dispose);
    return context;
  };
  const timeModel = (model) => {
    const createContext = model.createContext.bind(model);
    const dispose = model.dispose.bind(model);
    model.createContext = (options) => timed(() => createContext(options)).then(timeContext);
    model.dispose = () => timed(dispose);
    return model;
  };
  const proxy = new Proxy(llama, {
    get(target, key) {
      if (key === 'loadModel') return (options) => timed(() => target.loadModel(options)).then(timeModel);
      const value = Reflect.get(target, key, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
  return { llama: proxy, clock, timed };
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

const DIFFERENCE = (a, b) => a.map((v, i) => v - b[i]);

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
      const measured = timedRuntime(llama);
      const runtime = new LlamaGuard({ guard, llama: measured.llama });
      const generation = (context) => measured.timed(() => generate(nodeLlamaCpp, context));
      const bare = async () => {
        const model = await measured.llama.loadModel({ modelPath });
        const context = await model.createContext({ contextSize: 256, threads: 1 });
        await generation(context);
        await context.dispose();
        await model.dispose();
      };
      const guarded = async () => {
        const model = await runtime.loadModel({ id: 'bench', modelPath });
        const context = await model.createContext({ contextSize: 256, threads: 1 });
        await context.use(generation);
        await model.close();
      };
      /** A cycle's wall time, and how much of it was spent inside node-llama-cpp's calls. */
      const timed = async (cycle) => {
        measured.clock.inside = 0;
        const started = performance.now();
        await cycle();
        return { total: performance.now() - started, inside: measured.clock.inside };
      };
      try {
        ctx.log(`runtimes, ${spec.name} model (${(modelBytes / 2 ** 20).toFixed(1)} MiB): ${s.warmup} warm-up cycles each, ${rounds} rounds of bare, guarded and a second bare (rotating order)`);
        for (let i = 0; i < s.warmup; i += 1) {
          await bare();
          await guarded();
        }
        const cycles = [bare, guarded, bare];
        const took = [[], [], []];
        for (let i = 0; i < rounds; i += 1) {
          for (const which of ORDERS[i % ORDERS.length]) took[which].push(await timed(cycles[which]));
        }
        const total = took.map((t) => t.map((x) => x.total));
        const inside = took.map((t) => t.map((x) => x.inside));
        const outside = took.map((t) => t.map((x) => x.total - x.inside));
        const result = summarizeModel({ total, inside, outside });
        results[spec.name] = { ...result, modelBytes, rounds };
        tables.push(modelTable(spec.name, modelBytes, rounds, result));
      } finally {
        await runtime.close();
        await guard.close();
      }
    }
    const loadAfter = loadavg();
    const load = (l) => l.map((v) => v.toFixed(1)).join(' / ');
    const added = Object.entries(results).map(([name, r]) => `${name} ${(r.ownMs.added.median * 1000).toFixed(0)} µs of ${r.bare.median.toFixed(1)} ms (${((r.ownMs.added.median / r.bare.median) * 100).toFixed(2)} %, ${r.verdict})`);
    tables.at(-1).footer.push(`added per cycle by the adapter and the guard, by model: ${added.join('; ')}`);
    tables.at(-1).footer.push(`load average (1/5/15 min) ${load(loadBefore)} before, ${load(loadAfter)} after, on ${cpus().length} cores`);
    return { id, title, results: { ...results, loadBefore, loadAfter, tokens: TOKENS }, tables };
  } finally {
    await llama.dispose();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The figures and verdicts of one model's run; each argument holds [bare, guarded, second bare]. */
function summarizeModel({ total, inside, outside }) {
  const bare = summarize(total[0]);
  const limit = 0.01 * bare.median;
  const verdictOf = (i) => (i.high <= limit ? 'met' : i.low > limit ? 'NOT met' : 'undecided (the interval straddles 1 %)');
  const pair = (values) => {
    const added = DIFFERENCE(values[1], values[0]);
    const control = DIFFERENCE(values[2], values[0]);
    return { added: summarize(added), addedInterval95: medianInterval(added), control: summarize(control), controlInterval95: medianInterval(control) };
  };
  const own = pair(outside);
  const runtimeCalls = pair(inside);
  const whole = pair(total);
  return {
    bare,
    guarded: summarize(total[1]),
    bareOutsideMs: summarize(outside[0]),
    guardedOutsideMs: summarize(outside[1]),
    ownMs: own,
    runtimeCallsMs: runtimeCalls,
    wholeMs: whole,
    ratio: summarize(total[1]).median / bare.median,
    verdict: verdictOf(own.addedInterval95),
  };
}

function modelTable(name, modelBytes, rounds, r) {
  const ms = (v) => `${v.toFixed(2)} ms`;
  const us = (v) => `${(v * 1000).toFixed(1)} µs`;
  const pct = (v) => `${((v / r.bare.median) * 100).toFixed(2)} %`;
  const row = (label, x, f) => [label, f(x.p10), `**${f(x.median)}**`, f(x.p90), f(x.mean)];
  const interval = (i, f) => `${f(i.low)} .. ${f(i.high)}`;
  return {
    title: `${name} model (${(modelBytes / 2 ** 20).toFixed(1)} MiB): loadModel + createContext(256) + ${TOKENS} tokens + dispose, CPU, 2 threads, ${rounds} rounds`,
    columns: [{ title: 'per cycle' }, ...['p10', 'median', 'p90', 'mean'].map((t) => ({ title: t, align: 'right' }))],
    rows: [
      row('bare node-llama-cpp, whole cycle', r.bare, ms),
      row('through vramguard/node-llama-cpp, whole cycle', r.guarded, ms),
      row("bare: outside node-llama-cpp's calls (the harness)", r.bareOutsideMs, us),
      row("guarded: outside node-llama-cpp's calls", r.guardedOutsideMs, us),
      row('the adapter and the guard: guarded − bare outside, within a round', r.ownMs.added, us),
      row("inside node-llama-cpp's calls: guarded − bare", r.runtimeCallsMs.added, ms),
      row("inside node-llama-cpp's calls: control, bare − bare", r.runtimeCallsMs.control, ms),
      row('whole cycle: guarded − bare', r.wholeMs.added, ms),
      row('whole cycle: control, bare − bare', r.wholeMs.control, ms),
    ],
    footer: [
      `the adapter and the guard add ${us(r.ownMs.added.median)} = ${pct(r.ownMs.added.median)} of a bare cycle (median; bootstrap 95 % interval ${interval(r.ownMs.addedInterval95, us)}, ${interval(r.ownMs.addedInterval95, pct)}): goal <= 1 % ${r.verdict}`,
      `inside node-llama-cpp's calls, guarded − bare: median ${ms(r.runtimeCallsMs.added.median)} (interval ${interval(r.runtimeCallsMs.addedInterval95, ms)}) against the control's ${ms(r.runtimeCallsMs.control.median)} (${interval(r.runtimeCallsMs.controlInterval95, ms)})`,
      `whole cycles, guarded − bare: median ${ms(r.wholeMs.added.median)} (${pct(r.wholeMs.added.median)}; interval ${interval(r.wholeMs.addedInterval95, ms)}) against the control's ${ms(r.wholeMs.control.median)} (${interval(r.wholeMs.controlInterval95, ms)}); ratio of medians ${r.ratio.toFixed(4)}`,
    ],
  };
}
