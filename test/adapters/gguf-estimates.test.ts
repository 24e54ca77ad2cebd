// node-llama-cpp's estimates per GGUF file: read once, read again when the file changes.
import { utimesSync } from 'node:fs';

import { getLlama, type Llama, LlamaLogLevel } from 'node-llama-cpp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { GgufEstimates } from '../../src/adapters/gguf-estimates';
import { tinyModel } from './llama-fixture';

let llama: Llama;
let model: Awaited<ReturnType<typeof tinyModel>>;
beforeAll(async () => {
  model = await tinyModel();
  llama = await getLlama({ gpu: false, build: 'never', maxThreads: 2, logLevel: LlamaLogLevel.error });
});
afterAll(async () => {
  await llama?.dispose();
  model?.cleanup();
});

describe('GgufEstimates', () => {
  it('reads a file once while it is unchanged, and again when it changes', async () => {
    const estimates = new GgufEstimates(llama);
    const first = await estimates.forFile(model.path);
    expect(await estimates.forFile(model.path)).toBe(first);
    expect(first.insights.totalLayers).toBe(3); // 2 blocks + the output layer
    const a = await first.context({ contextSize: 256, modelGpuLayers: 0 });
    expect(await first.context({ contextSize: 256, modelGpuLayers: 0 })).toBe(a);
    expect((await first.context({ contextSize: 512, modelGpuLayers: 0 })).cpuRam).toBeGreaterThan(a.cpuRam);

    // Rewritten with four blocks (and a new modification time): read again.
    // @ts-expect-error: a plain .mjs script, without types
    const { writeTinyGguf, TINY_GGUF } = await import('../../scripts/tiny-gguf.mjs');
    writeTinyGguf(model.path, { ...TINY_GGUF, layers: 4 });
    utimesSync(model.path, new Date(), new Date(Date.now() + 10_000));
    const second = await estimates.forFile(model.path);
    expect(second).not.toBe(first);
    expect(second.insights.totalLayers).toBe(5);
    await expect(estimates.forFile('/no/such/model.gguf')).rejects.toThrow();
  });
});
