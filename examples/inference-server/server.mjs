#!/usr/bin/env node
// An inference server that keeps its GPU memory under control with vramguard.
//
//   node examples/inference-server/server.mjs [--config config.json] [--runtime node-llama-cpp] [--port 8080] [--host 127.0.0.1]
//
// By default each model runs in a child worker process (worker.cjs) that loads slowly and holds VRAM
// while loaded. With --runtime node-llama-cpp (or "runtime": "node-llama-cpp" in the config) the models
// are real node-llama-cpp models in this process (llama-runtime.mjs; on the CPU, the project's tiny
// generated GGUF unless a model gives its modelPath), each with one context as its child session.
// Models are guard sessions with load/dispose: loaded on first use after admission, evicted when idle
// or under pressure, reloaded on their next request. A request for a model that cannot fit falls back
// to the configured smaller model, or gets 503 with Retry-After; it never hangs.
//
//   POST /v1/generate {"model": "...", "prompt": "..."}  -> 200 {"model", "text", "fallbackFrom"?}
//   GET  /health                                         -> 200 when ready, 503 while starting/draining
//   GET  /metrics                                        -> Prometheus text, from this server's registry
//   GET  /status                                         -> guard.status() as JSON
//   POST /admin/unload                                   -> unloads every model (waits for their requests)
import { fork } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

import { Registry } from 'prom-client';
import { GuardDrainingError, SessionEvictedError, VramGuard, VramQuotaError, parseBytes } from 'vramguard';

import { createLlamaRuntime } from './llama-runtime.mjs';

const here = dirname(fileURLToPath(import.meta.url));

const DEFAULT_CONFIG = {
  guard: { quota: { soft: '14GiB', hard: '16GiB' }, interval: '50ms', idleTtl: '30s' },
  requestTimeoutMs: 30_000,
  models: [
    { id: 'llama-8b', bytes: '6GiB', loadMs: 300, priority: 1, fallback: 'llama-1b' },
    { id: 'mistral-7b', bytes: '5GiB', loadMs: 250 },
    { id: 'qwen-14b', bytes: '9GiB', loadMs: 400, fallback: 'llama-1b' },
    { id: 'llama-1b', bytes: '1GiB', loadMs: 100, priority: 5 },
  ],
};

/**
 * Real models on the CPU: three tiny GGUF models (about 0.5 MiB each and a 0.9 MiB context, by the
 * adapter's 'ram' accounting on the guard's ledger), two of which fit under the limit at once.
 */
const DEFAULT_LLAMA_CONFIG = {
  runtime: 'node-llama-cpp',
  guard: { quota: { soft: '3.2MiB', hard: '3.2MiB' }, idleTtl: '5m' },
  requestTimeoutMs: 30_000,
  models: [
    { id: 'tiny-a', priority: 1, fallback: 'tiny-small' },
    { id: 'tiny-b' },
    { id: 'tiny-c', fallback: 'tiny-small' },
    { id: 'tiny-small', contextSize: 64, priority: 5 },
  ],
};

/** One line of JSON per event on stdout: what happened, with figures (tests read it). */
function log(event, fields = {}) {
  process.stdout.write(`${JSON.stringify({ time: Date.now(), event, ...fields })}\n`);
}

export function createInferenceServer(config = DEFAULT_CONFIG) {
  const registry = new Registry();
  const guard = new VramGuard(config.guard);
  guard.metrics(registry);
  const models = new Map(config.models.map((m) => [m.id, m.bytes === undefined ? m : { ...m, bytes: parseBytes(m.bytes, `models.${m.id}.bytes`) }]));
  const llamaRuntime = config.runtime === 'node-llama-cpp' ? createLlamaRuntime(guard, config, log) : null;
  if (config.runtime !== undefined && !llamaRuntime) throw new Error(`runtime: expected "node-llama-cpp", got ${JSON.stringify(config.runtime)}`);
  const workers = new Map(); // model id -> { child, pending }
  const firstLoads = new Map(); // model id -> promise of its first load
  let nextRequest = 1;

  // A cache the server can drop under pressure (here: nothing real; it shows the releaser hook).
  const promptCache = new Map();
  guard.addReleaser('prompt-cache', () => promptCache.clear(), { priority: 0 });

  for (const name of ['pressure', 'breach', 'admit', 'refuse', 'grow', 'release', 'trend', 'recycle', 'device-lost']) {
    guard.on(name, (payload) => log(name, { ...payload, error: payload.error?.message }));
  }
  guard.on('evict', (e) => {
    log('evict', {
      id: e.id,
      bytes: e.bytes,
      reason: e.reason,
      durationMs: e.durationMs,
      error: e.error?.message,
      // What the guard chose from: every session's state when this one was disposed.
      sessions: guard.sessions.list().map(({ id, state, busy, pinned, priority, lastUsedAt, bytes }) => ({
        id, state, busy, pinned, priority, lastUsedAt, bytes,
      })),
    });
  });

  function startWorker(model) {
    // One worker per model: a leftover one (a load that raced an unload) goes first.
    const stale = workers.get(model.id);
    if (stale) stale.child.kill('SIGKILL');
    return new Promise((resolve, reject) => {
      const child = fork(join(here, 'worker.cjs'), [], {
        env: {
          ...process.env,
          MODEL_ID: model.id,
          MODEL_BYTES: String(Math.round(model.bytes * (model.actualRatio ?? 1))),
          LOAD_MS: String(model.loadMs ?? 200),
          TOKEN_MS: String(model.tokenMs ?? config.tokenMs ?? 2),
          GPU_INDEX: String(config.guard.device ?? 0),
        },
        stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      });
      const worker = { child, pending: new Map() };
      workers.set(model.id, worker);
      child.on('message', (message) => {
        if (message.type === 'ready') {
          log('loaded', { id: model.id, pid: message.pid });
          resolve(worker);
        } else if (message.type === 'result') {
          worker.pending.get(message.id)?.resolve(message.text);
          worker.pending.delete(message.id);
        }
      });
      child.on('exit', (code, signal) => {
        if (workers.get(model.id) === worker) workers.delete(model.id);
        for (const p of worker.pending.values()) p.reject(new Error(`worker for ${model.id} exited (${signal ?? code})`));
        worker.pending.clear();
        reject(new Error(`worker for ${model.id} exited before it was ready (${signal ?? code})`));
      });
    });
  }

  /** Asks the model's worker to unload and waits for it to exit (killing it if it does not, in time). */
  function stopWorker(id) {
    const worker = workers.get(id);
    if (!worker || worker.child.exitCode !== null || worker.child.signalCode !== null) return Promise.resolve();
    return new Promise((resolve) => {
      const kill = setTimeout(() => worker.child.kill('SIGKILL'), 3000);
      worker.child.once('exit', () => {
        clearTimeout(kill);
        resolve();
      });
      if (worker.child.connected) worker.child.send({ type: 'unload' });
      else worker.child.kill('SIGKILL');
    });
  }

  /** The first load of a model: admission, the worker, then the session (later loads go through `load`). */
  async function ensureRegistered(model) {
    if (guard.sessions.has(model.id)) return;
    let loading = firstLoads.get(model.id);
    if (!loading) {
      loading = (async () => {
        const reservation = await guard.admit(model.bytes, { id: model.id });
        try {
          await startWorker(model);
        } catch (error) {
          reservation.cancel();
          throw error;
        }
        try {
          reservation.commit({
            load: () => startWorker(model).then(() => undefined),
            dispose: () => stopWorker(model.id),
            priority: model.priority ?? 0,
            idleTtl: model.idleTtl,
          });
        } catch (error) {
          // The guard drained while the worker started (its reservation was cancelled): stop it.
          await stopWorker(model.id);
          throw error;
        }
      })().finally(() => firstLoads.delete(model.id));
      firstLoads.set(model.id, loading);
    }
    await loading;
  }

  async function generate(modelId, prompt) {
    const model = models.get(modelId);
    if (!model) throw Object.assign(new Error(`unknown model ${modelId}`), { status: 404 });
    if (llamaRuntime) {
      await llamaRuntime.register(model);
      return llamaRuntime.generate(model, prompt);
    }
    await ensureRegistered(model);
    return guard.sessions.use(model.id, () => {
      const worker = workers.get(model.id);
      if (!worker) throw new Error(`worker for ${model.id} is not running`);
      const id = nextRequest++;
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`${model.id} did not answer in time`)), config.requestTimeoutMs);
        worker.pending.set(id, {
          resolve: (text) => { clearTimeout(timer); resolve(text); },
          reject: (error) => { clearTimeout(timer); reject(error); },
        });
        worker.child.send({ type: 'generate', id, prompt });
      });
    });
  }

  /** The answer to a request that failed for a reason the client can act on; anything else is a 500. */
  function refusal(error) {
    if (error instanceof GuardDrainingError || error?.code === 'DRAINING') return { status: 503, retryAfter: 5, body: { error: 'shutting down' } };
    if (error instanceof SessionEvictedError) return { status: 503, retryAfter: 1, body: { error: error.message } };
    if (error?.status === 404) return { status: 404, body: { error: error.message } };
    throw error;
  }

  /** Generate, degrading instead of failing: the fallback model, or a deliberate 503. */
  async function handleGenerate(body) {
    const { model, prompt } = body;
    try {
      return { status: 200, body: { model, text: await generate(model, prompt) } };
    } catch (error) {
      if (!(error instanceof VramQuotaError)) return refusal(error);
      const fallback = models.get(model)?.fallback;
      if (fallback) {
        try {
          return { status: 200, body: { model: fallback, fallbackFrom: model, text: await generate(fallback, prompt) } };
        } catch (fallbackError) {
          // The fallback's own failure (a drain begun meanwhile, say) is answered as the model's would be.
          if (!(fallbackError instanceof VramQuotaError)) return refusal(fallbackError);
        }
      }
      return { status: 503, retryAfter: 2, body: { error: 'no GPU memory for this model now', neededBytes: error.neededBytes, freeBytes: error.freeBytes } };
    }
  }

  const server = createServer((req, res) => {
    const send = (status, body, headers = {}) => {
      res.writeHead(status, { 'content-type': 'application/json', ...headers });
      res.end(JSON.stringify(body));
    };
    if (req.method === 'GET' && req.url === '/health') {
      const health = guard.health();
      return send(health.state === 'ready' ? 200 : 503, health);
    }
    if (req.method === 'GET' && req.url === '/status') return send(200, guard.status());
    if (req.method === 'POST' && req.url === '/admin/unload') {
      guard.sessions.unloadAll().then(
        () => send(200, { unloaded: guard.sessions.list().map((s) => s.id) }),
        (error) => send(500, { error: error.message }),
      );
      return undefined;
    }
    if (req.method === 'GET' && req.url === '/metrics') {
      registry.metrics().then(
        (text) => {
          res.writeHead(200, { 'content-type': registry.contentType });
          res.end(text);
        },
        (error) => send(500, { error: error.message }),
      );
      return undefined;
    }
    if (req.method === 'POST' && req.url === '/v1/generate') {
      let raw = '';
      req.setEncoding('utf8');
      req.on('data', (chunk) => {
        raw += chunk;
      });
      req.on('end', () => {
        let body;
        try {
          body = JSON.parse(raw);
        } catch {
          return send(400, { error: 'body must be JSON: {"model": "...", "prompt": "..."}' });
        }
        handleGenerate(body).then(
          (r) => send(r.status, r.body, r.retryAfter ? { 'retry-after': String(r.retryAfter) } : {}),
          (error) => {
            log('error', { message: error.message });
            send(500, { error: error.message });
          },
        );
      });
      return undefined;
    }
    return send(404, { error: 'not found' });
  });

  /** Stop taking requests; in-flight ones finish (the guard drain waits for their uses). */
  const stopAccepting = () => new Promise((resolve) => server.close(() => resolve()));
  /** Stop the model workers (and the in-process runtime): after the drain disposed every session. */
  const stopWorkers = async () => {
    for (const worker of workers.values()) worker.child.kill();
    await llamaRuntime?.shutdown();
  };
  async function shutdown() {
    await stopAccepting();
    await stopWorkers();
  }

  return { server, guard, registry, shutdown, stopAccepting, stopWorkers, workers };
}

async function main() {
  const { values } = parseArgs({
    options: {
      config: { type: 'string' },
      runtime: { type: 'string' },
      port: { type: 'string', default: '8080' },
      host: { type: 'string', default: '127.0.0.1' },
    },
  });
  if (values.runtime !== undefined && values.runtime !== 'node-llama-cpp') throw new Error(`--runtime: expected node-llama-cpp, got ${values.runtime}`);
  const config = values.config
    ? { ...JSON.parse(readFileSync(values.config, 'utf8')), ...(values.runtime ? { runtime: values.runtime } : {}) }
    : values.runtime
      ? DEFAULT_LLAMA_CONFIG
      : DEFAULT_CONFIG;
  const app = createInferenceServer(config);
  // At the signal: stop accepting (in-flight requests finish, the drain waits for their uses); after the
  // drain and close: stop the workers.
  app.guard.installShutdownHandlers({
    onSignal: async (signal) => {
      log('shutdown', { signal });
      await app.stopAccepting();
    },
    onShutdown: () => app.stopWorkers(),
  });
  app.server.listen(Number(values.port), values.host, () => {
    const address = app.server.address();
    log('listening', { port: address.port, host: address.address });
  });
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  main().catch((error) => {
    console.error(error.message);
    process.exit(1);
  });
}
