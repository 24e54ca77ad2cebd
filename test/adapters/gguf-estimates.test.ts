// node-llama-cpp's estimates per GGUF file: read once, read again when the file changes.
import { utimesSync } from 'node:fs';

import { describe, expect, it } from 'vitest';

import { GgufEstimates } from '../../src/adapters/gguf-estimates';
import { useTinyLlama } from './llama-fixture';

const tiny = useTinyLlama();

describe('GgufEstimates', () => {
  it('reads a file once while it is unchanged, and again when it changes', async () => {
    const estimates = new GgufEstimates(tiny.llama);
    const first = await estimates.forFile(tiny.model.path);
    expect(await estimates.forFile(tiny.model.path)).toBe(first);
    expect(first.insights.totalLayers).toBe(3); // 2 blocks + the output layer
    const a = await first.context({ contextSize: 256, modelGpuLayers: 0 });
    expect(await first.context({ contextSize: 256, modelGpuLayers: 0 })).toBe(a);
    expect((await first.context({ contextSize: 512, modelGpuLayers: 0 })).cpuRam).toBeGreaterThan(a.cpuRam);

    // Rewritten with four blocks (and a new modification time): read again.
    // @ts-expect-error: a plain .mjs script, without types
    const { writeTinyGguf, TINY_GGUF } = await import('../../scripts/tiny-gguf.mjs');
    writeTinyGguf(tiny.model.path, { ...TINY_GGUF, layers: 4 });
    utimesSync(tiny.model.path, new Date(), new Date(Date.now() + 10_000));
    const second = await estimates.forFile(tiny.model.path);
    expect(second).not.toBe(first);
    expect(second.insights.totalLayers).toBe(5);
    await expect(estimates.forFile('/no/such/model.gguf')).rejects.toThrow();
  });
});
