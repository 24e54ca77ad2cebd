// The example server's real runtime: node-llama-cpp models under vramguard/node-llama-cpp. Each
// configured model is a GGUF file (by default the project's tiny generated one, scripts/tiny-gguf.mjs)
// loaded on first use after admission, with one context (the model's child session) that answers its
// requests one at a time. Idle contexts are released first under pressure; idle models are evicted
// (their context first) for admissions; both reload on their next request.
//
// Config: { "runtime": "node-llama-cpp", "llama": { "gpu": false, "maxThreads": 2 },
//           "models": [{ "id", "modelPath"?, "gpuLayers"?, "contextSize"?, "maxTokens"?, "priority"?, "fallback"? }] }
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

import { LlamaGuard } from 'vramguard/node-llama-cpp';

const here = dirname(fileURLToPath(import.meta.url));

/** A runtime for createInferenceServer: register(model) once, then generate(model, prompt) inside the guard. */
export function createLlamaRuntime(guard, config, log) {
  let started;
  const entries = new Map(); // model id -> { model, context, queue }
  const firstLoads = new Map();
  let scratch = null;

  function start() {
    started ??= (async () => {
      const { getLlama, LlamaLogLevel } = await import('node-llama-cpp');
      const llama = await getLlama({ gpu: false, build: 'never', maxThreads: 2, logLevel: LlamaLogLevel.error, ...config.llama });
      let generated = null;
      if (config.models.some((m) => !m.modelPath)) {
        const { writeTinyGguf } = await import(pathToFileURL(join(here, '..', '..', 'scripts', 'tiny-gguf.mjs')).href);
        scratch = mkdtempSync(join(tmpdir(), 'inference-server-'));
        generated = join(scratch, 'tiny-llama.gguf');
        writeTinyGguf(generated);
      }
      return { llama, runtime: new LlamaGuard({ guard, llama }), generated };
    })();
    return started;
  }

  async function register(model) {
    if (entries.has(model.id)) return;
    let loading = firstLoads.get(model.id);
    if (!loading) {
      loading = (async () => {
        const { llama, runtime, generated } = await start();
        const policy = { priority: model.priority ?? 0, idleTtl: model.idleTtl };
        const guarded = await runtime.loadModel({ id: model.id, modelPath: model.modelPath ?? generated, gpuLayers: model.gpuLayers ?? (llama.gpu === false ? 0 : 'auto'), ...policy });
        try {
          const context = await guarded.createContext({ id: `${model.id}#ctx`, contextSize: model.contextSize ?? 256, threads: 1, ...policy });
          entries.set(model.id, { model: guarded, context, queue: Promise.resolve() });
          log('loaded', { id: model.id, pid: process.pid, bytes: guarded.session.bytes + context.session.bytes });
        } catch (error) {
          await guarded.close();
          throw error;
        }
      })().finally(() => firstLoads.delete(model.id));
      firstLoads.set(model.id, loading);
    }
    await loading;
  }

  /** One completion on the model's context (requests to one model queue: one sequence per context). */
  async function generate(model, prompt) {
    const { LlamaCompletion } = await import('node-llama-cpp');
    const entry = entries.get(model.id);
    const run = () =>
      entry.context.use(async (context) => {
        const sequence = context.getSequence();
        try {
          const completion = new LlamaCompletion({ contextSequence: sequence });
          return await completion.generateCompletion(prompt, { maxTokens: model.maxTokens ?? 8 });
        } finally {
          sequence.dispose();
        }
      });
    const result = entry.queue.then(run, run);
    entry.queue = result.catch(() => undefined);
    return result;
  }

  async function shutdown() {
    if (!started) return;
    const { llama, runtime } = await started;
    await runtime.close();
    await llama.dispose();
    if (scratch) rmSync(scratch, { recursive: true, force: true });
  }

  return { register, generate, shutdown, sessionIds: (model) => [model.id, `${model.id}#ctx`] };
}
