// The tiny GGUF model, generated once per test file into a temporary folder (no network, no hub).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export async function tinyModel(): Promise<{ path: string; bytes: number; cleanup(): void }> {
  // @ts-expect-error: a plain .mjs script, without types
  const { writeTinyGguf } = (await import('../../scripts/tiny-gguf.mjs')) as { writeTinyGguf(path: string): number };
  const dir = mkdtempSync(join(tmpdir(), 'vramguard-gguf-'));
  const path = join(dir, 'tiny-llama.gguf');
  const bytes = writeTinyGguf(path);
  return { path, bytes, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}
