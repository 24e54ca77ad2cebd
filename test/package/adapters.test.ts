// The runtime adapters as package exports (vramguard/node-llama-cpp, vramguard/onnxruntime-node,
// vramguard/model-servers), from CommonJS and ESM consumers, running the built dist/: there the
// adapter imports the ESM-only node-llama-cpp through a real dynamic import (tests of src/ go
// through the test runner's own import instead).
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, beforeAll, expect, it } from 'vitest';

const root = join(__dirname, '..', '..');
let project: string;

beforeAll(() => {
  project = mkdtempSync(join(tmpdir(), 'vramguard-adapter-consumer-'));
  mkdirSync(join(project, 'node_modules'));
  for (const name of ['vramguard', 'node-llama-cpp']) {
    symlinkSync(name === 'vramguard' ? root : join(root, 'node_modules', name), join(project, 'node_modules', name), 'dir');
  }
});
afterAll(() => rmSync(project, { recursive: true, force: true }));

function run(file: string, source: string): unknown {
  writeFileSync(join(project, file), source);
  const out = execFileSync(process.execPath, [join(project, file), join(root, 'scripts', 'tiny-gguf.mjs'), join(project, 'tiny.gguf')], {
    cwd: tmpdir(), // not the project: the adapter resolves node-llama-cpp from its own place
    env: { ...process.env, VRAMGUARD_NVML_LIBRARY: join(project, 'no-libnvidia-ml.so.1') },
    encoding: 'utf8',
  });
  return JSON.parse(out.trim().split('\n').at(-1)!);
}

const body = `
  const { writeTinyGguf } = await import(pathToFileURL(process.argv[2]).href);
  writeTinyGguf(process.argv[3]);
  const guard = new VramGuard({ quota: { hard: 2 ** 34 } });
  const llama = await getLlama({ gpu: false, build: 'never', maxThreads: 2, logLevel: LlamaLogLevel.error });
  const runtime = new LlamaGuard({ guard, llama });
  const model = await runtime.loadModel({ id: 'tiny', modelPath: process.argv[3] });
  const context = await model.createContext({ contextSize: 128, threads: 1 });
  const text = await context.use((ctx) => new LlamaCompletion({ contextSequence: ctx.getSequence() }).generateCompletion('the', { maxTokens: 4 }));
  const bytes = model.session.bytes;
  await runtime.close();
  await guard.close();
  await llama.dispose();
  console.log(JSON.stringify({
    generated: typeof text, bytes: bytes > 0, ort: typeof createGuardedInferenceSession,
    servers: [typeof RemoteModelServer, typeof OllamaDriver, typeof LlamaServerRouterDriver, typeof VllmSleepDriver],
  }));`;
const expected = { generated: 'string', bytes: true, ort: 'function', servers: ['function', 'function', 'function', 'function'] };

it('works from CommonJS require (node-llama-cpp imported by the adapter itself)', () => {
  const result = run(
    'consumer.cjs',
    `const { VramGuard } = require('vramguard');
     const { LlamaGuard } = require('vramguard/node-llama-cpp');
     const { createGuardedInferenceSession } = require('vramguard/onnxruntime-node');
     const { RemoteModelServer, OllamaDriver, LlamaServerRouterDriver, VllmSleepDriver } = require('vramguard/model-servers');
     const { pathToFileURL } = require('node:url');
     (async () => {
       const { getLlama, LlamaCompletion, LlamaLogLevel } = await import('node-llama-cpp');
       ${body}
     })();`,
  );
  expect(result).toEqual(expected);
});

it('works from ESM import, sharing one instance with require', () => {
  const result = run(
    'consumer.mjs',
    `import { VramGuard } from 'vramguard';
     import { LlamaGuard } from 'vramguard/node-llama-cpp';
     import { createGuardedInferenceSession } from 'vramguard/onnxruntime-node';
     import { RemoteModelServer, OllamaDriver, LlamaServerRouterDriver, VllmSleepDriver } from 'vramguard/model-servers';
     import { getLlama, LlamaCompletion, LlamaLogLevel } from 'node-llama-cpp';
     import { createRequire } from 'node:module';
     import { pathToFileURL } from 'node:url';
     if (createRequire(import.meta.url)('vramguard/node-llama-cpp').LlamaGuard !== LlamaGuard) {
       throw new Error('ESM and CJS see different instances');
     }
     ${body}`,
  );
  expect(result).toEqual(expected);
});
