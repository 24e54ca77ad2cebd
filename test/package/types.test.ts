// TypeScript consumers of both entry points ('vramguard', 'vramguard/testing') type-check under every
// common resolution: node10 (the default for module commonjs: no "exports", so typesVersions), node16
// and nodenext (exports' require/import conditions; CommonJS and ESM files), bundler. skipLibCheck as
// most projects set it: an entry whose declarations do not resolve still fails, the imports find nothing.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, beforeAll, expect, it, vi } from 'vitest';

// Each check is a tsc run: seconds on a quiet machine, minutes on a busy one.
vi.setConfig({ testTimeout: 300_000 });

const root = join(__dirname, '..', '..');
const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');
let project: string;

beforeAll(() => {
  project = mkdtempSync(join(tmpdir(), 'vramguard-types-'));
  mkdirSync(join(project, 'node_modules', '@types'), { recursive: true });
  symlinkSync(root, join(project, 'node_modules', 'vramguard'), 'dir');
  symlinkSync(join(root, 'node_modules', '@types', 'node'), join(project, 'node_modules', '@types', 'node'), 'dir');
});
afterAll(() => {
  if (project) rmSync(project, { recursive: true, force: true });
});

// Uses a value and a type from each entry point, so an entry that resolves to nothing (or to `any`)
// fails: `satisfies` and the assignments need the real declarations.
const uses = `
  const sampler: Sampler = new Sampler({ interval: '100ms' });
  const bytes: number = parseBytes('1GiB');
  const scenario = { devices: [mockDevice(0, 24)] } satisfies MockScenario;
  const mock: MockNvml = createMockNvml(scenario);
  const clock = new FakeClock();
  export const all = [sampler, bytes, mock.env.VRAMGUARD_NVML_LIBRARY.length, clock.now() + 1];
`;
const esmImports = `
  import { Sampler, parseBytes } from 'vramguard';
  import vramguard from 'vramguard';
  import { createMockNvml, mockDevice, FakeClock, type MockNvml, type MockScenario } from 'vramguard/testing';
  export const same: typeof Sampler = vramguard.Sampler;
`;
const cjsImports = `
  import { Sampler, parseBytes } from 'vramguard';
  import { createMockNvml, mockDevice, FakeClock, type MockNvml, type MockScenario } from 'vramguard/testing';
`;
const cjsRequire = `
  import vramguard = require('vramguard');
  import testing = require('vramguard/testing');
  const { Sampler, parseBytes } = vramguard;
  type Sampler = vramguard.Sampler;
  const { createMockNvml, mockDevice, FakeClock } = testing;
  type MockNvml = testing.MockNvml;
  type MockScenario = testing.MockScenario;
`;

/** Type-checks the given files in their own folder with these compiler options; returns tsc's output. */
function check(name: string, options: Record<string, unknown>, files: Record<string, string>, type?: 'module' | 'commonjs'): string {
  const dir = join(project, name);
  mkdirSync(dir);
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name, private: true, ...(type ? { type } : {}) }));
  for (const [file, source] of Object.entries(files)) writeFileSync(join(dir, file), source);
  const compilerOptions = { strict: true, noEmit: true, skipLibCheck: true, types: ['node'], target: 'es2022', ...options };
  writeFileSync(join(dir, 'tsconfig.json'), JSON.stringify({ compilerOptions, files: Object.keys(files) }));
  try {
    return execFileSync(process.execPath, [tsc, '-p', dir], { cwd: dir, encoding: 'utf8' });
  } catch (error) {
    const { stdout, stderr } = error as { stdout: string; stderr: string };
    throw new Error(`tsc (${name}: ${JSON.stringify(options)}) failed:\n${stdout}${stderr}`);
  }
}

it('module commonjs with the default (node10) resolution: import and import = require', () => {
  expect(check('node10', { module: 'commonjs', esModuleInterop: true }, { 'a.ts': cjsImports + uses, 'b.ts': cjsRequire + uses })).toBe('');
});

it('node16: a CommonJS package; nodenext: an ESM package with a .cts file', () => {
  expect(check('node16-cjs', { module: 'node16' }, { 'a.ts': cjsImports + uses, 'b.ts': cjsRequire + uses }, 'commonjs')).toBe('');
  expect(check('nodenext-esm', { module: 'nodenext' }, { 'a.ts': esmImports + uses, 'b.cts': cjsRequire + uses }, 'module')).toBe('');
});

it('bundler', () => {
  expect(check('bundler', { module: 'esnext', moduleResolution: 'bundler', esModuleInterop: true }, { 'a.ts': esmImports + uses })).toBe('');
});
