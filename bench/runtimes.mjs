// Runtime adapter benchmark (issue "Real model runtimes"): whole load → context → generate → dispose
// cycles of node-llama-cpp on the CPU with the generated tiny GGUF, bare and through
// vramguard/node-llama-cpp (admission on the GGUF insights estimate, commit, use, unload and removal
// from a guard on its ledger), in pairs that alternate which goes first, so both see the same machine.
// Goal: the guard adds at most 1% wall time to a cycle. The verdict is on the median of the per-pair
// differences, with a bootstrap 95% interval (seeded): met when the whole interval is at or under 1%,
// not met when it is wholly above, undecided otherwise (a loaded machine: run again, or more pairs).
// The load average before and after is part of the result.
//   node bench/run.mjs runtimes [--quick]
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';

import { median, summarize } from './lib/stats.mjs';

export const id = 'runtimes';
export const title = 'Runtime adapters: node-llama-cpp cycles, bare and through the guard';

const TOKENS = 16;

function settings(quick) {
  return quick ? { warmup: 2, pairs: 10 } : { warmup: 10, pairs: 300 };
}

/** A bootstrap 95% interval of the median of `values` (seeded: the same data give the same interval). */
export function medianInterval(values, resamples = 2000, seed = 0x5eed) {
  let state = seed >>> 0;
  const random = () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
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
  const { writeTinyGguf } = await import('../scripts/tiny-gguf.mjs');
  const { LlamaGuard } = require('../dist/cjs/adapters/node-llama-cpp.js');
  const { VramGuard } = ctx.vramguard;
  const dir = mkdtempSync(join(ctx.tmpdir, 'vramguard-bench-gguf-'));
  const modelPath = join(dir, 'tiny-llama.gguf');
  const modelBytes = writeTinyGguf(modelPath);
  const llama = await nodeLlamaCpp.getLlama({ gpu: false, build: 'never', maxThreads: 2, logLevel: nodeLlamaCpp.LlamaLogLevel.error });
  // The ledger (no NVML library at this path): what is measured is the adapter and the guard's own work.
  const guard = new VramGuard({ quota: { hard: 2 ** 40 }, idleTtl: null, libraryPath: join(dir, 'no-libnvidia-ml.so.1') });
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
  // The guard's own calls of one guarded cycle, with no runtime behind them: admit and commit a model
  // and its context (the context a child, the commit above its reservation re-checked), a nested use,
  // unload and removal. What the adapter adds beyond these is the cached estimate (a file check).
  const bookkeeping = new VramGuard({ quota: { hard: 2 ** 40 }, idleTtl: null, libraryPath: join(dir, 'no-libnvidia-ml.so.1') });
  const noop = () => undefined;
  const guardOnly = async () => {
    const r = await bookkeeping.admit(400_000, { id: 'm' });
    const model = r.commit({ bytes: 515_328, dispose: noop, load: noop });
    const rc = await bookkeeping.admit(969_728, { id: 'm#ctx' });
    const context = rc.commit({ dispose: noop, load: noop, parent: model });
    await context.use(noop);
    await bookkeeping.sessions.delete('m');
  };
  const timed = async (fn) => {
    const started = performance.now();
    await fn();
    return performance.now() - started;
  };

  try {
    ctx.log(`runtimes: ${s.warmup} warm-up cycles each, then ${s.pairs} alternated pairs`);
    const loadBefore = loadavg();
    for (let i = 0; i < s.warmup; i += 1) {
      await bare();
      await guarded();
    }
    const bareMs = [];
    const guardedMs = [];
    const differences = [];
    for (let i = 0; i < s.pairs; i += 1) {
      // Alternate which goes first, so drift and caches favour neither.
      const [first, second] = i % 2 ? [guarded, bare] : [bare, guarded];
      const a = await timed(first);
      const b = await timed(second);
      const [g, b0] = i % 2 ? [a, b] : [b, a];
      guardedMs.push(g);
      bareMs.push(b0);
      differences.push(g - b0);
    }
    for (let i = 0; i < 50; i += 1) await guardOnly();
    const guardOnlyMs = [];
    for (let i = 0; i < s.pairs; i += 1) guardOnlyMs.push(await timed(guardOnly));
    const own = summarize(guardOnlyMs);
    const loadAfter = loadavg();
    const b = summarize(bareMs);
    const g = summarize(guardedMs);
    const d = summarize(differences);
    const ratio = g.median / b.median;
    const interval = medianInterval(differences);
    const pct = (v) => `${((v / b.median) * 100).toFixed(2)} %`;
    const verdict = interval.high <= 0.01 * b.median ? 'met' : interval.low > 0.01 * b.median ? 'NOT met' : 'undecided (the interval straddles 1 %)';
    const ms = (v) => `${v.toFixed(2)} ms`;
    const load = (l) => l.map((v) => v.toFixed(1)).join(' / ');
    return {
      id,
      title,
      results: { bare: b, guarded: g, guardOnlyMs: own, differenceMs: d, differenceInterval95Ms: interval, ratio, verdict, loadBefore, loadAfter, tokens: TOKENS, modelBytes, pairs: s.pairs },
      tables: [
        {
          title: `One cycle: loadModel + createContext(256) + ${TOKENS} tokens + dispose, CPU, 2 threads, tiny GGUF (${(modelBytes / 1024).toFixed(0)} KiB), ${s.pairs} alternated pairs`,
          columns: [{ title: 'path' }, ...['p10', 'median', 'p90', 'mean'].map((t) => ({ title: t, align: 'right' }))],
          rows: [
            ['bare node-llama-cpp', ms(b.p10), `**${ms(b.median)}**`, ms(b.p90), ms(b.mean)],
            ['through vramguard/node-llama-cpp', ms(g.p10), `**${ms(g.median)}**`, ms(g.p90), ms(g.mean)],
            ['difference within a pair', ms(d.p10), `**${ms(d.median)}**`, ms(d.p90), ms(d.mean)],
            ["the guard's own calls of a cycle, no runtime", ms(own.p10), `**${ms(own.median)}**`, ms(own.p90), ms(own.mean)],
          ],
          footer: [
            `median of the pair differences ${ms(d.median)} = ${pct(d.median)} of a bare cycle, bootstrap 95 % interval ${ms(interval.low)} .. ${ms(interval.high)} (${pct(interval.low)} .. ${pct(interval.high)}); ratio of medians ${ratio.toFixed(4)}`,
            `the guard's own calls: ${pct(own.median)} of the bare median, ${((own.median / b.p10) * 100).toFixed(2)} % of the bare p10 (the least disturbed cycles)`,
            `goal <= 1 %: ${verdict}; load average (1/5/15 min) ${load(loadBefore)} before, ${load(loadAfter)} after, on ${cpus().length} cores`,
          ],
        },
      ],
    };
  } finally {
    await runtime.close();
    await guard.close();
    await bookkeeping.close();
    await llama.dispose();
    rmSync(dir, { recursive: true, force: true });
  }
}
