// vramguard/node-llama-cpp on the CPU with a real (generated) GGUF model: real loads, generated tokens,
// real disposes, eviction and reload through the guard. The guard runs on its ledger (no NVML), the
// adapter accounting RAM ('ram': node-llama-cpp's cpuRam estimates and the loaded model's size).
import { type Llama, LlamaCompletion, type LlamaContext } from 'node-llama-cpp';
import { describe, expect, it } from 'vitest';

import { GuardedLlamaContext, LlamaGuard } from '../../src/adapters/node-llama-cpp';
import { VramQuotaError } from '../../src/errors';
import { type EvictEvent, type GrowEvent, VramGuard } from '../../src/guard';
import { useTinyLlama } from './llama-fixture';

const tiny = useTinyLlama();

/** A guard on its ledger (no NVML library at this path). */
function ledgerGuard(quota: { soft?: number; hard: number }): VramGuard {
  return new VramGuard({ quota, hysteresis: 1, idleTtl: null, libraryPath: '/nonexistent/libnvidia-ml.so.1' });
}

async function generate(context: GuardedLlamaContext, maxTokens = 8): Promise<number> {
  return context.use(async (ctx: LlamaContext) => {
    const sequence = ctx.getSequence();
    try {
      const completion = new LlamaCompletion({ contextSequence: sequence });
      let tokens = 0;
      await completion.generateCompletion('the cat and the dog', { maxTokens, onToken: (t) => (tokens += t.length) });
      return tokens;
    } finally {
      sequence.dispose();
    }
  });
}

/** What one model and one 256-token context take, by the adapter's own figures. */
async function footprint(): Promise<{ model: number; context: number }> {
  const guard = ledgerGuard({ hard: 2 ** 40 });
  const runtime = new LlamaGuard({ guard, llama: tiny.llama });
  const m = await runtime.loadModel({ id: 'probe', modelPath: tiny.model.path });
  const c = await m.createContext({ contextSize: 256, threads: 1 });
  const figures = { model: m.session.bytes, context: c.session.bytes };
  await runtime.close();
  await guard.close();
  return figures;
}

const MiB = 2 ** 20;

/**
 * The real model on the CPU, its backend's VRAM reading (getVramState) simulated: each real load takes
 * 100 MiB and each context 32 MiB, as a GPU backend would allocate them; `used` is the reading.
 */
function simulatedGpu(real: Llama): { llama: Llama; used: number } {
  const backend = { used: 0, llama: undefined as unknown as Llama };
  backend.llama = new Proxy(real, {
    get(target, key) {
      if (key === 'gpu') return 'cuda';
      if (key === 'getVramState') return async () => ({ total: 2 ** 40, used: backend.used, free: 2 ** 40 - backend.used, unifiedSize: 0 });
      if (key === 'loadModel') {
        return async (options: Parameters<Llama['loadModel']>[0]) => {
          const model = await target.loadModel(options);
          backend.used += 100 * MiB;
          const createContext = model.createContext.bind(model);
          model.createContext = async (o) => {
            const context = await createContext(o);
            backend.used += 32 * MiB;
            return context;
          };
          return model;
        };
      }
      const value = Reflect.get(target, key, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  }) as Llama;
  return backend;
}

describe('vramguard/node-llama-cpp', () => {
  it('admits on the estimate, commits the measured bytes, generates, and disposes for real', async () => {
    const guard = ledgerGuard({ hard: 2 ** 40 });
    const admitted: number[] = [];
    guard.on('admit', (e) => admitted.push(e.bytes));
    const evictions: EvictEvent[] = [];
    guard.on('evict', (e) => evictions.push(e));
    const runtime = new LlamaGuard({ guard, llama: tiny.llama });
    expect(runtime.accounting).toBe('ram');
    const m = await runtime.loadModel({ id: 'tiny', modelPath: tiny.model.path, gpuLayers: 0 });
    expect(m.figures.estimatedBytes).toBeGreaterThan(0);
    expect(m.session.bytes).toBe(m.model!.size);
    const c = await m.createContext({ contextSize: 256, threads: 1 });
    expect(admitted).toEqual([m.figures.estimatedBytes, c.figures.estimatedBytes]);
    expect(c.context!.contextSize).toBe(256);
    expect(await generate(c)).toBeGreaterThan(0);
    expect(guard.status().usage.ledgerBytes).toBe(m.session.bytes + c.session.bytes);

    const llamaModel = m.model!;
    const llamaContext = c.context!;
    // The context is the model's child in the guard: its use is the model's.
    expect(c.session.parent).toBe(m.session);
    await c.use(() => expect(m.session.busy).toBe(1));
    expect(await m.unload()).toBe(true);
    expect(evictions.map((e) => [e.id, e.reason])).toEqual([[c.id, 'parent'], ['tiny', 'unload']]);
    // The context went first, through the guard, then the model: both really disposed.
    expect(llamaContext.disposed).toBe(true);
    expect(llamaModel.disposed).toBe(true);
    expect([m.session.state, c.session.state]).toEqual(['evicted', 'evicted']);
    expect(guard.status().usage.ledgerBytes).toBe(0);

    // Next use reloads both (model first) and generates again.
    expect(await generate(c)).toBeGreaterThan(0);
    expect([m.session.loads, c.session.loads]).toEqual([2, 2]);
    expect(m.model).not.toBe(llamaModel);
    await runtime.close();
    expect(guard.sessions.list()).toEqual([]);
    await guard.close();
  });

  it('admits a file loaded before on what its last load measured when that is more than the estimate', async () => {
    const guard = ledgerGuard({ hard: 2 ** 40 });
    const admitted: Array<[string | undefined, number]> = [];
    guard.on('admit', (e) => admitted.push([e.id, e.bytes]));
    const backend = simulatedGpu(tiny.llama);
    const runtime = new LlamaGuard({ guard, llama: backend.llama, releaseIdleContexts: false });
    const first = await runtime.loadModel({ id: 'first', modelPath: tiny.model.path, gpuLayers: 0 });
    // 100 MiB measured; node-llama-cpp's VRAM estimate with no GPU layers is far less.
    expect(first.figures.measuredBytes).toBe(100 * MiB);
    expect(first.figures.estimatedBytes).toBeLessThan(100 * MiB);
    const second = await runtime.loadModel({ id: 'second', modelPath: tiny.model.path, gpuLayers: 0 });
    const other = await runtime.loadModel({ id: 'other', modelPath: tiny.model.path, gpuLayers: 0, useMmap: false });
    expect(admitted).toEqual([
      ['first', first.figures.estimatedBytes],
      ['second', 100 * MiB], // the same file and options: what its last load measured
      ['other', other.figures.estimatedBytes], // other options: their own estimate
    ]);
    expect(second.session.bytes).toBe(100 * MiB);
    await runtime.close();
    await guard.close();
  });

  it('evicts the least recently used model (its context first) to admit another, and reloads it on use', async () => {
    const size = await footprint();
    // Room for one model with its context, not two.
    const guard = ledgerGuard({ hard: 2 * size.model + size.context + size.context / 2 });
    const evicted: EvictEvent[] = [];
    guard.on('evict', (e) => evicted.push(e));
    const runtime = new LlamaGuard({ guard, llama: tiny.llama });
    const a = await runtime.loadModel({ id: 'a', modelPath: tiny.model.path });
    const ca = await a.createContext({ contextSize: 256, threads: 1 });
    await generate(ca);
    const b = await runtime.loadModel({ id: 'b', modelPath: tiny.model.path });
    const cb = await b.createContext({ contextSize: 256, threads: 1 });
    // Admitting b's context evicted a's context (least recently used), not a's model.
    expect(evicted.map((e) => [e.id, e.reason])).toEqual([['a#ctx1', 'admission']]);
    expect(a.model).not.toBeNull();
    await generate(cb);

    // Using a's context again needs room: b's context is the least recently used now.
    await generate(ca);
    expect(evicted.map((e) => e.id)).toEqual(['a#ctx1', 'b#ctx1']);
    expect(ca.session.loads).toBe(2);
    expect(cb.context).toBeNull();

    // A model too large for the quota is refused with the figures.
    const tight = ledgerGuard({ hard: size.model / 2 });
    const refused = await new LlamaGuard({ guard: tight, llama: tiny.llama }).loadModel({ id: 'big', modelPath: tiny.model.path }).catch((e) => e);
    expect(refused).toBeInstanceOf(VramQuotaError);
    expect((refused as VramQuotaError).neededBytes).toBeGreaterThan(size.model / 2);
    await tight.close();
    await runtime.close();
    await guard.close();
  });

  it('releases idle contexts first at the soft limit: the model stays, the context reloads on use', async () => {
    const size = await footprint();
    const guard = ledgerGuard({ soft: size.model + size.context / 2, hard: 2 ** 40 });
    const released: string[] = [];
    guard.on('release', (e) => released.push(e.name));
    const evicted: EvictEvent[] = [];
    guard.on('evict', (e) => evicted.push(e));
    const runtime = new LlamaGuard({ guard, llama: tiny.llama });
    const m = await runtime.loadModel({ id: 'tiny', modelPath: tiny.model.path });
    const c = await m.createContext({ contextSize: 256, threads: 1 });
    // Every use that ends over the soft limit runs relief: the releaser disposes the idle context
    // (its use ended) and usage is under the target again, so the model is never evicted.
    for (let round = 1; round <= 2; round += 1) {
      expect(await generate(c)).toBeGreaterThan(0);
      await expect.poll(() => c.session.state).toBe('evicted');
      expect(c.context).toBeNull();
      expect(m.model).not.toBeNull();
    }
    expect(new Set(released)).toEqual(new Set(['node-llama-cpp idle contexts']));
    expect(new Set(evicted.map((e) => `${e.id}:${e.reason}`))).toEqual(new Set([`${c.id}:unload`]));
    expect(c.session.loads).toBeGreaterThanOrEqual(2);
    await expect(runtime.releaseIdleContexts()).resolves.toBe(0);
    expect(await generate(c)).toBeGreaterThan(0);
    await runtime.close();
    await guard.close();
  });

  it("in 'vram' accounting measures each load as the backend's VRAM change, one load at a time", async () => {
    // A backend whose VRAM use grows by what each load allocates (node-llama-cpp's getVramState()).
    let used = 1000;
    const backend = { gpu: 'cuda', loadModel: () => undefined, getVramState: async () => ({ total: 1e12, used, free: 1e12 - used, unifiedSize: 0 }) };
    const guard = ledgerGuard({ hard: 2 ** 30 });
    const runtime = new LlamaGuard({ guard, llama: backend as unknown as Llama, releaseIdleContexts: false });
    expect(runtime.accounting).toBe('vram');
    const allocate = (bytes: number, steps: number) => async () => {
      for (let i = 0; i < steps; i += 1) {
        used += bytes / steps;
        await new Promise((resolve) => setImmediate(resolve));
      }
      return bytes;
    };
    // Started together, measured apart: neither load sees the other's memory.
    const [a, b] = await Promise.all([
      runtime.readings.load(allocate(300, 3), () => null),
      runtime.readings.load(allocate(500, 5), () => null),
    ]);
    expect([a.bytes, b.bytes]).toEqual([300, 500]);
    await guard.close();
  });

  it("in 'vram' accounting measures a context's first evaluation only when nothing else was measured meanwhile", async () => {
    let used = 1000;
    const backend = { gpu: 'cuda', loadModel: () => undefined, getVramState: async () => ({ total: 1e12, used, free: 1e12 - used, unifiedSize: 0 }) };
    const guard = ledgerGuard({ hard: 2 ** 30 });
    const runtime = new LlamaGuard({ guard, llama: backend as unknown as Llama, releaseIdleContexts: false });
    expect(runtime.measuresEvaluations).toBe(true);
    const grow = (bytes: number) => async () => {
      used += bytes;
      await new Promise((resolve) => setImmediate(resolve));
      return bytes;
    };
    // Alone: the reading is the use's growth.
    await expect(runtime.readings.use(grow(64))).resolves.toEqual({ result: 64, grownBytes: 64 });
    // Two at once: neither reading can tell its own growth from the other's.
    const [a, b] = await Promise.all([runtime.readings.use(grow(10)), runtime.readings.use(grow(20))]);
    expect([a.grownBytes, b.grownBytes]).toEqual([null, null]);
    // A load during a use spoils the use's reading (the load's own is taken, and counts both).
    let finishUse!: () => void;
    const use = runtime.readings.use(() => new Promise<void>((resolve) => (finishUse = resolve)));
    const load = await runtime.readings.load(grow(300), () => null);
    finishUse();
    expect([(await use).grownBytes, load.bytes]).toEqual([null, 300]);
    // A backend that cannot be read: no figure, and the use still resolves.
    const broken = new LlamaGuard({
      guard,
      llama: { ...backend, getVramState: () => Promise.reject(new Error('no backend')) } as unknown as Llama,
      releaseIdleContexts: false,
    });
    await expect(broken.readings.use(async () => 'done')).resolves.toEqual({ result: 'done', grownBytes: undefined });
    expect(new LlamaGuard({ guard, llama: tiny.llama }).measuresEvaluations).toBe(false); // 'ram': nothing to read
    await guard.close();
  });

  it("books what a context's first evaluation grew: relief past soft, unload when refused, measured again after a reload", async () => {
    // The real model on the CPU, its backend's VRAM reading simulated: each real load and the first
    // evaluation after it allocate what a GPU backend would (weights, KV cache, compute pool).
    let firstEvaluationBytes = 64 * MiB;
    const backend = simulatedGpu(tiny.llama);
    const llama = backend.llama;
    const firstEvaluation = (context: GuardedLlamaContext) =>
      context.use(async (ctx) => {
        const sequence = ctx.getSequence();
        try {
          await new LlamaCompletion({ contextSequence: sequence }).generateCompletion('the cat', { maxTokens: 4 });
        } finally {
          sequence.dispose();
        }
        backend.used += firstEvaluationBytes; // a GPU backend's compute pool, grown by this evaluation
        firstEvaluationBytes = 0; // ... once per context: later evaluations reuse it
        return 'generated';
      });
    // Soft between "two models and contexts" and "plus one first evaluation"; hard above that.
    const guard = ledgerGuard({ soft: 2 * (100 + 32) * MiB + 32 * MiB, hard: 2 * (100 + 32) * MiB + 96 * MiB });
    const grows: GrowEvent[] = [];
    guard.on('grow', (e) => e.kind === 'resize' && grows.push(e)); // (commits above the CPU's 0-byte VRAM estimates too)
    const evicted: string[] = [];
    guard.on('evict', (e) => {
      evicted.push(e.id);
      backend.used -= e.bytes; // a disposed context or model really gives its memory back
    });
    const runtime = new LlamaGuard({ guard, llama });
    expect(runtime.accounting).toBe('vram');
    const a = await runtime.loadModel({ id: 'a', modelPath: tiny.model.path, gpuLayers: 0 });
    const ca = await a.createContext({ contextSize: 256, threads: 1 });
    const b = await runtime.loadModel({ id: 'b', modelPath: tiny.model.path, gpuLayers: 0 });
    const cb = await b.createContext({ contextSize: 256, threads: 1 });
    expect([a.session.bytes, ca.session.bytes]).toEqual([100 * MiB, 32 * MiB]);

    // b's context grows by 64 MiB at its first evaluation: past soft, under hard. The guard books it
    // and relieves: the idle-context releaser disposes every idle context (both, now that b's use ended).
    expect(await firstEvaluation(cb)).toBe('generated');
    expect(cb.figures.evaluationBytes).toBe(64 * MiB);
    expect(grows.map((e) => [e.id, e.kind, e.fromBytes, e.toBytes, e.outcome])).toEqual([[cb.id, 'resize', 32 * MiB, 96 * MiB, 'relieve']]);
    await expect.poll(() => new Set(evicted)).toEqual(new Set([ca.id, cb.id]));
    expect([a.model, b.model].every(Boolean)).toBe(true); // the models stay
    // b's context reloads on its next use; that first evaluation is measured again (it grew nothing).
    expect(await firstEvaluation(cb)).toBe('generated');
    expect(cb.session.loads).toBe(2);
    expect(cb.session.bytes).toBe(32 * MiB);
    expect(grows).toHaveLength(1);
    // ... and later evaluations are not measured.
    firstEvaluationBytes = 8 * MiB;
    expect(await firstEvaluation(cb)).toBe('generated');
    expect(cb.session.bytes).toBe(32 * MiB);

    // a's context reloads too; its first evaluation after that reload grows by 300 MiB, which does not
    // fit under hard even after evicting every idle session: refused, and the context is unloaded.
    firstEvaluationBytes = 300 * MiB;
    const refused: string[] = [];
    guard.on('refuse', (e) => refused.push(e.id));
    expect(await firstEvaluation(ca)).toBe('generated'); // the use's result stands
    expect(refused).toEqual([ca.id]);
    expect(grows.at(-1)).toMatchObject({ id: ca.id, kind: 'resize', fromBytes: 32 * MiB, toBytes: 332 * MiB, outcome: 'refused' });
    expect(ca.session.state).toBe('evicted');
    expect(ca.context).toBeNull();
    expect(ca.session.bytes).toBe(32 * MiB);
    expect(guard.status().usage.ledgerBytes).toBe(2 * 100 * MiB + 32 * MiB);
    await runtime.close();
    await guard.close();
  });

  it('rejects bad options with one line naming them', () => {
    const guard = ledgerGuard({ hard: 2 ** 30 });
    expect(() => new LlamaGuard({ guard, llama: {} as Llama })).toThrow(/llama/);
    expect(() => new LlamaGuard({ guard, llama: tiny.llama, accounting: 'disk' as 'ram' })).toThrow(/"disk"/);
    const runtime = new LlamaGuard({ guard, llama: tiny.llama, releaseIdleContexts: false });
    return expect(runtime.loadModel({ id: '', modelPath: tiny.model.path })).rejects.toThrow(/id/);
  });
});

