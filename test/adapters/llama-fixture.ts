// The tiny GGUF model, generated once per test file into a temporary folder (no network, no hub).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { getLlama, type Llama, LlamaLogLevel } from 'node-llama-cpp';
import { afterAll, beforeAll } from 'vitest';

export async function tinyModel(): Promise<{ path: string; bytes: number; cleanup(): void }> {
  // @ts-expect-error: a plain .mjs script, without types
  const { writeTinyGguf } = (await import('../../scripts/tiny-gguf.mjs')) as { writeTinyGguf(path: string): number };
  const dir = mkdtempSync(join(tmpdir(), 'vramguard-gguf-'));
  const path = join(dir, 'tiny-llama.gguf');
  const bytes = writeTinyGguf(path);
  return { path, bytes, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/**
 * Registers beforeAll/afterAll hooks that generate the model and start node-llama-cpp on the CPU
 * (2 threads: the default of 4 is many times slower on 2 cores); read the fields inside tests.
 */
export function useTinyLlama(): { llama: Llama; model: Awaited<ReturnType<typeof tinyModel>> } {
  const state = {} as { llama: Llama; model: Awaited<ReturnType<typeof tinyModel>> };
  beforeAll(async () => {
    state.model = await tinyModel();
    state.llama = await getLlama({ gpu: false, build: 'never', maxThreads: 2, logLevel: LlamaLogLevel.error });
  });
  afterAll(async () => {
    await state.llama?.dispose();
    state.model?.cleanup();
  });
  return state;
}
