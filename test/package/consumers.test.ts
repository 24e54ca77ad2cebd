// ESM `import` and CommonJS `require` consumers, from a project that depends on vramguard.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, beforeAll, expect, it } from 'vitest';

import { createMockNvml, mockDevice, type MockNvml } from '../../src/testing';

const root = join(__dirname, '..', '..');
let project: string;
let mock: MockNvml;

beforeAll(() => {
  project = mkdtempSync(join(tmpdir(), 'vramguard-consumer-'));
  mkdirSync(join(project, 'node_modules'));
  symlinkSync(root, join(project, 'node_modules', 'vramguard'), 'dir');
  mock = createMockNvml({ devices: [mockDevice(0, 24)] });
});
afterAll(() => {
  rmSync(project, { recursive: true, force: true });
  mock.cleanup();
});

function run(file: string, source: string): unknown {
  writeFileSync(join(project, file), source);
  const out = execFileSync(process.execPath, [join(project, file)], {
    cwd: project,
    env: { ...process.env, ...mock.env },
    encoding: 'utf8',
  });
  return JSON.parse(out);
}

const body = `
  const sampler = new Sampler({ interval: '10ms' }).start();
  const snapshot = await sampler.next();
  sampler.close();
  console.log(JSON.stringify({
    sampler: typeof Sampler, error: new NvmlError({ code: 'GPU_IS_LOST', returnValue: 15, function: 'f' }).code,
    total: snapshot.devices[0].memoryTotalBytes, mockPath: typeof mockLibraryPath(), available: nvml.available(),
  }));`;
const expected = { sampler: 'function', error: 'GPU_IS_LOST', total: 24 * 2 ** 30, mockPath: 'string', available: true };

it('works from CommonJS require', () => {
  const result = run(
    'consumer.cjs',
    `const { Sampler, NvmlError, nvml } = require('vramguard');
     const { mockLibraryPath } = require('vramguard/testing');
     (async () => { ${body} })();`,
  );
  expect(result).toEqual(expected);
});

it('works from ESM import, sharing one instance with require', () => {
  const result = run(
    'consumer.mjs',
    `import { Sampler, NvmlError, nvml } from 'vramguard';
     import vramguard from 'vramguard';
     import { mockLibraryPath } from 'vramguard/testing';
     import { createRequire } from 'node:module';
     if (createRequire(import.meta.url)('vramguard').Sampler !== Sampler || vramguard.Sampler !== Sampler) {
       throw new Error('ESM and CJS see different instances');
     }
     ${body}`,
  );
  expect(result).toEqual(expected);
});
