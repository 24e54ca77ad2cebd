// Models served by another process, through the guard, against fake servers (test/fixtures/
// model-server.cjs) that speak the documented endpoints of Ollama, llama.cpp's router and vLLM and
// hold their memory on the mock NVML under their own pids (children of this process: process-tree
// scope sees them).
import { type ChildProcess, fork } from 'node:child_process';
import { join } from 'node:path';

import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';

import {
  LlamaServerRouterDriver,
  ModelServerError,
  OllamaDriver,
  RemoteModelServer,
  VllmSleepDriver,
} from '../../src/adapters/model-servers';
import { VramQuotaError } from '../../src/errors';
import { type EvictEvent, VramGuard } from '../../src/guard';
import { mockDevice, type MockNvml } from '../../src/testing';
import { GiB, MiB, useMock } from '../helpers';

let mock: MockNvml;
beforeAll(() => {
  mock = useMock({ processUtilizationPeriodMs: 50, devices: [mockDevice(0, 24)] });
});
afterAll(() => mock.cleanup());

interface FakeServer {
  url: string;
  pid: number;
  requests: Array<{ method: string; path: string; body?: { keep_alive?: unknown } }>;
  child: ChildProcess;
}
const servers: FakeServer[] = [];
const guards: VramGuard[] = [];

function startServer(kind: string, catalog: Record<string, number>, options: object = {}): Promise<FakeServer> {
  const child = fork(join(__dirname, '..', 'fixtures', 'model-server.cjs'), [
    kind,
    mock.controlPath,
    '0',
    JSON.stringify(catalog),
    JSON.stringify(options),
  ]);
  const requests: FakeServer['requests'] = [];
  return new Promise((resolve, reject) => {
    child.on('message', (m: { type: string; port?: number; pid?: number; method?: string; path?: string; body?: object }) => {
      if (m.type === 'request') requests.push({ method: m.method!, path: m.path!, body: m.body });
      if (m.type === 'listening') {
        const server = { url: `http://127.0.0.1:${m.port}`, pid: m.pid!, requests, child };
        servers.push(server);
        resolve(server);
      }
    });
    child.once('error', reject);
  });
}

function stopServer(server: FakeServer): Promise<void> {
  return new Promise((resolve) => {
    if (server.child.exitCode !== null) return resolve();
    server.child.once('exit', () => resolve());
    server.child.send('shutdown');
  });
}

afterEach(async () => {
  await Promise.all(guards.splice(0).map((g) => g.close()));
  await Promise.all(servers.splice(0).map(stopServer));
});

async function readyGuard(hard: number): Promise<VramGuard> {
  // soft = hard: only admissions evict here (no relief at a soft limit in between).
  const guard = new VramGuard({ quota: { soft: hard, hard }, interval: '20ms', idleTtl: null });
  guards.push(guard);
  await expect.poll(() => guard.health().state).toBe('ready');
  return guard;
}

const unloads = (server: FakeServer) =>
  server.requests.filter((r) => r.path === '/api/generate' && r.body?.keep_alive === 0).length;

describe('Ollama', () => {
  it('admits, accounts size_vram, evicts with keep_alive: 0 for room, and loads again on use', async () => {
    const ollama = await startServer('ollama', { llama3: 5 * GiB, qwen: 5 * GiB, phi: 4 * GiB });
    const guard = await readyGuard(12 * GiB);
    const evictions: EvictEvent[] = [];
    guard.on('evict', (e) => evictions.push(e));
    const remote = new RemoteModelServer({ guard, driver: new OllamaDriver({ url: ollama.url }), reconcileEvery: null });

    const llama3 = await remote.add('llama3', { bytes: 4 * GiB }); // Ollama's own figure differs from the estimate
    expect(llama3.session.bytes).toBe(5 * GiB);
    await expect.poll(() => ollama.requests.find((r) => r.path === '/api/generate')?.body).toEqual({ model: 'llama3', keep_alive: -1 });
    const qwen = await remote.add('qwen', { bytes: 5 * GiB });
    // NVML sees both runners (grandchildren of this process).
    await expect.poll(() => guard.status().usage.scopeBytes).toBe(10 * GiB);
    await qwen.use(() => undefined);

    // phi does not fit beside both: the least recently used (llama3) is unloaded by the server's API.
    const phi = await remote.add('phi', { bytes: 4 * GiB });
    expect(evictions.map((e) => [e.id, e.reason])).toEqual([['llama3', 'admission']]);
    await expect.poll(() => unloads(ollama)).toBe(1);
    expect(await remote.driver.loaded()).toEqual(new Set(['qwen', 'phi']));
    await expect.poll(() => guard.status().usage.scopeBytes).toBe(9 * GiB);

    await phi.use(() => undefined);
    // llama3's next use loads it again, unloading qwen (least recently used now).
    expect(await llama3.use((model) => model)).toBe('llama3');
    expect(evictions.map((e) => e.id)).toEqual(['llama3', 'qwen']);
    expect(llama3.session.loads).toBe(2);

    await expect(remote.add('mixtral', { bytes: 20 * GiB })).rejects.toBeInstanceOf(VramQuotaError);
    await remote.close();
    expect(await remote.driver.loaded()).toEqual(new Set());
  });

  it("reconciles with Ollama's own evictions (keep_alive expiry, its maximum of loaded models)", async () => {
    const ollama = await startServer('ollama', { a: 2 * GiB, b: 2 * GiB, c: 2 * GiB }, { maxLoaded: 2 });
    const guard = await readyGuard(20 * GiB);
    const remote = new RemoteModelServer({ guard, driver: new OllamaDriver({ url: ollama.url }), reconcileEvery: null });
    const a = await remote.add('a', { bytes: 2 * GiB });
    await remote.add('b', { bytes: 2 * GiB });
    const external: string[] = [];
    guard.on('evict', (e) => e.reason === 'external' && external.push(e.id));
    // Ollama itself makes room for c by dropping a: the guard's books still say a is loaded...
    await remote.add('c', { bytes: 2 * GiB });
    expect(a.session.state).toBe('loaded');
    // ...until reconcile() compares them with /api/ps. No unload request is sent for it.
    expect(await remote.reconcile()).toEqual(['a']);
    expect(a.session.state).toBe('evicted');
    expect(unloads(ollama)).toBe(0);
    expect(external).toEqual(['a']); // taken off the books by session.markEvicted()
    expect(guard.status().usage.ledgerBytes).toBe(4 * GiB);
    expect(await remote.reconcile()).toEqual([]);

    // With a keep_alive of its own, Ollama expires models; the periodic reconcile notices.
    const expiring = new RemoteModelServer({ guard, driver: new OllamaDriver({ url: ollama.url, keepAlive: '100ms' }), reconcileEvery: '50ms' });
    const d = await expiring.add('a', { id: 'a-expiring', bytes: 2 * GiB });
    await expect.poll(() => d.session.state, { timeout: 10_000 }).toBe('evicted');
    await expiring.close();
    await remote.close();
  });

  it('names the server, the endpoint and the status in its errors', async () => {
    const ollama = await startServer('ollama', { a: GiB });
    const guard = await readyGuard(20 * GiB);
    const remote = new RemoteModelServer({ guard, driver: new OllamaDriver({ url: ollama.url }), reconcileEvery: null });
    const error = await remote.add('nope', { bytes: GiB }).catch((e) => e);
    expect(error).toBeInstanceOf(ModelServerError);
    expect(error.message).toMatch(/^ollama POST \/api\/generate: HTTP 404: .*nope/);
    expect(guard.status().usage.reservedBytes).toBe(0);
    expect(() => new OllamaDriver({ url: 'ftp://x' })).toThrow(/ftp:\/\/x/);
    const closed = new OllamaDriver({ url: 'http://127.0.0.1:9', timeoutMs: 2000 });
    await expect(closed.loaded()).rejects.toThrow(/no answer from http:\/\/127\.0\.0\.1:9/);
  });
});

describe("llama.cpp's server in router mode", () => {
  it('accounts each model by its own process, unloads through /models/unload, loads again on use', async () => {
    const router = await startServer('llama-router', { 'qwen2.5-7b': 6 * GiB, 'gemma-2b': 3 * GiB, 'llama-8b': 5 * GiB });
    const guard = await readyGuard(12 * GiB);
    const evictions: EvictEvent[] = [];
    guard.on('evict', (e) => evictions.push(e));
    const remote = new RemoteModelServer({ guard, driver: new LlamaServerRouterDriver({ url: router.url, pid: router.pid }), reconcileEvery: null });
    const qwen = await remote.add('qwen2.5-7b', { bytes: 5 * GiB });
    expect(qwen.session.bytes).toBe(6 * GiB); // NVML's figure for the model's own process
    const gemma = await remote.add('gemma-2b', { bytes: 3 * GiB });
    expect(gemma.session.bytes).toBe(3 * GiB);
    await gemma.use(() => undefined);
    const llama = await remote.add('llama-8b', { bytes: 5 * GiB });
    expect(evictions.map((e) => [e.id, e.reason])).toEqual([['qwen2.5-7b', 'admission']]);
    await expect.poll(() => router.requests.filter((r) => r.path === '/models/unload').map((r) => r.body)).toEqual([{ model: 'qwen2.5-7b' }]);
    expect(await remote.driver.loaded()).toEqual(new Set(['gemma-2b', 'llama-8b']));
    expect(llama.session.bytes).toBe(5 * GiB);
    await expect.poll(() => guard.status().usage.scopeBytes).toBe(8 * GiB);

    await llama.use(() => undefined);
    await qwen.use(() => undefined);
    expect(evictions.map((e) => [e.id, e.reason])).toEqual([['qwen2.5-7b', 'admission'], ['gemma-2b', 'admission']]);
    await remote.close();
    expect(await remote.driver.loaded()).toEqual(new Set());
  });
});

describe('vLLM with sleep mode', () => {
  it('sleeps to evict, wakes up on use, and accounts the server by NVML', async () => {
    const vllm = await startServer('vllm', { 'meta-llama/Llama-3.1-8B': 10 * GiB }, { asleepBytes: 512 * MiB });
    const guard = await readyGuard(16 * GiB);
    await expect.poll(() => guard.status().usage.scopeBytes).toBe(10 * GiB);
    const driver = new VllmSleepDriver({ url: vllm.url, model: 'meta-llama/Llama-3.1-8B', pid: vllm.pid, level: 1 });
    const remote = new RemoteModelServer({ guard, driver, reconcileEvery: null });
    const model = await remote.add('meta-llama/Llama-3.1-8B', { id: 'llama', bytes: 9 * GiB });
    expect(model.session.bytes).toBe(10 * GiB);

    expect(await model.unload()).toBe(true);
    // (The fake server reports its requests over IPC, which may trail the HTTP answers.)
    await expect.poll(() => vllm.requests.filter((r) => r.method === 'POST').map((r) => r.path)).toEqual(['/sleep?level=1']);
    expect(await driver.isSleeping()).toBe(true);
    await expect.poll(() => guard.status().usage.scopeBytes).toBe(512 * MiB);

    await model.use(() => undefined);
    await expect.poll(() => vllm.requests.filter((r) => r.method === 'POST').map((r) => r.path)).toEqual(['/sleep?level=1', '/wake_up']);
    expect(await driver.isSleeping()).toBe(false);
    expect(model.session.loads).toBe(2);
    expect(() => new VllmSleepDriver({ url: vllm.url, model: 'x', level: 3 as 1 })).toThrow(/level.*3/);
    await remote.close({ unload: false });
    expect(await driver.isSleeping()).toBe(false);
  });
});
