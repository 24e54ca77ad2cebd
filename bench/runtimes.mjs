// Runtime adapter benchmark (issue "Real model runtimes"): whole load → context → generate → dispose
// cycles of node-llama-cpp on the CPU with the generated tiny GGUF, bare and through
// vramguard/node-llama-cpp (admission on the GGUF insights estimate, commit, use, unload and removal
// from a guard on its ledger), alternated in pairs so both see the same machine. Goal: the guard adds
// at most 1% wall time to a cycle.
//   node bench/run.mjs runtimes [--quick]
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';

import { summarize } from './lib/stats.mjs';

export const id = 'runtimes';
export const title = 'Runtime adapters: node-llama-cpp cycles, bare and through the guard';

const TOKENS = 16;

function settings(quick) {
  return quick ? { warmup: 2, pairs: 6 } : { warmup: 5, pairs: 60 };
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
  const timed = async (fn) => {
    const started = performance.now();
    await fn();
    return performance.now() - started;
  };

  try {
    ctx.log(`runtimes: ${s.warmup} warm-up cycles each, then ${s.pairs} alternated pairs`);
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
    const b = summarize(bareMs);
    const g = summarize(guardedMs);
    const d = summarize(differences);
    const ratio = g.median / b.median;
    const ms = (v) => `${v.toFixed(2)} ms`;
    return {
      id,
      title,
      results: { bare: b, guarded: g, differenceMs: d, ratio, tokens: TOKENS, modelBytes, pairs: s.pairs },
      tables: [
        {
          title: `One cycle: loadModel + createContext(256) + ${TOKENS} tokens + dispose, CPU, 2 threads, tiny GGUF (${(modelBytes / 1024).toFixed(0)} KiB), ${s.pairs} alternated pairs`,
          columns: [{ title: 'path' }, ...['p10', 'median', 'p90', 'mean'].map((t) => ({ title: t, align: 'right' }))],
          rows: [
            ['bare node-llama-cpp', ms(b.p10), `**${ms(b.median)}**`, ms(b.p90), ms(b.mean)],
            ['through vramguard/node-llama-cpp', ms(g.p10), `**${ms(g.median)}**`, ms(g.p90), ms(g.mean)],
            ['difference within a pair', ms(d.p10), `**${ms(d.median)}**`, ms(d.p90), ms(d.mean)],
          ],
          footer: [
            `ratio of medians ${ratio.toFixed(4)}; median added time ${((d.median / b.median) * 100).toFixed(2)} % of a bare cycle; goal <= 1 %: ${d.median / b.median <= 0.01 ? 'met' : 'NOT met'}`,
          ],
        },
      ],
    };
  } finally {
    await runtime.close();
    await guard.close();
    await llama.dispose();
    rmSync(dir, { recursive: true, force: true });
  }
}
