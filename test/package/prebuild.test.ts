// `npm run prebuild` makes prebuilds/linux-x64/ (addon + mock NVML), that prebuild is what loads with
// PREBUILDS_ONLY=1, and `npm pack` ships it. Runs in a copy of the package so the tree under test is
// left alone.
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, beforeAll, expect, it } from 'vitest';

import { createMockNvml, mockDevice, type MockNvml } from '../../src/testing';

const root = join(__dirname, '..', '..');
let copy: string;
let mock: MockNvml;

beforeAll(() => {
  copy = mkdtempSync(join(tmpdir(), 'vramguard-prebuild-'));
  for (const entry of ['package.json', 'binding.gyp', 'native', 'scripts', 'dist', 'README.md', 'CMakeLists.txt']) {
    if (existsSync(join(root, entry))) cpSync(join(root, entry), join(copy, entry), { recursive: true });
  }
  symlinkSync(join(root, 'node_modules'), join(copy, 'node_modules'), 'dir');
  execFileSync('npm', ['run', 'prebuild'], { cwd: copy, stdio: 'pipe' });
  mock = createMockNvml({ devices: [mockDevice(0, 24)] });
}, 300_000);
afterAll(() => {
  rmSync(copy, { recursive: true, force: true });
  mock?.cleanup();
});

it('makes prebuilds/linux-x64 with the addon and the mock NVML, and no stray libnvidia-ml beside the addon', () => {
  const dir = join(copy, 'prebuilds', `${process.platform}-${process.arch}`);
  expect(existsSync(join(dir, 'vramguard.node'))).toBe(true);
  expect(existsSync(join(dir, 'mock', 'libnvidia-ml.so.1'))).toBe(true);
  expect(existsSync(join(dir, 'mock-eras', 'libnvidia-ml-418.so.1'))).toBe(true);
  expect(existsSync(join(dir, 'libnvidia-ml.so.1'))).toBe(false);
});

it('loads the prebuild with PREBUILDS_ONLY=1 and samples the mock through it', () => {
  rmSync(join(copy, 'build'), { recursive: true, force: true });
  const out = execFileSync(
    process.execPath,
    [
      '-e',
      `const { nvml, Sampler } = require('./dist/cjs');
       const { bindingPath } = require('./dist/cjs/nvml');
       const { mockLibraryPath } = require('./dist/cjs/testing');
       const s = new Sampler({ interval: '10ms', libraryPath: mockLibraryPath() }).start();
       s.next().then((snap) => { s.close(); console.log(JSON.stringify({ binding: bindingPath(), mock: mockLibraryPath(), total: snap.devices[0].memoryTotalBytes })); });`,
    ],
    { cwd: copy, env: { ...process.env, PREBUILDS_ONLY: '1', VRAMGUARD_MOCK_SCENARIO: mock.scenarioPath }, encoding: 'utf8' },
  );
  const result = JSON.parse(out) as { binding: string; mock: string; total: number };
  expect(result.binding).toBe(join(copy, 'prebuilds', `${process.platform}-${process.arch}`, 'vramguard.node'));
  expect(result.mock.startsWith(join(copy, 'prebuilds'))).toBe(true);
  expect(result.total).toBe(24 * 2 ** 30);
});

it('ships the prebuild, the mock and both builds\' sources in the npm package', () => {
  const [pack] = JSON.parse(
    execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: copy, encoding: 'utf8' }),
  ) as Array<{ files: Array<{ path: string }> }>;
  const files = pack!.files.map((f) => f.path);
  const arch = `${process.platform}-${process.arch}`;
  expect(files).toEqual(
    expect.arrayContaining([
      `prebuilds/${arch}/vramguard.node`,
      `prebuilds/${arch}/mock/libnvidia-ml.so.1`,
      'binding.gyp',
      'CMakeLists.txt',
      'native/sources.json',
      'native/nvml_api.h',
      'dist/cjs/index.js',
      'dist/esm/index.js',
      'dist/cjs/testing/index.js',
    ]),
  );
  expect(files.some((f) => f.startsWith('build/'))).toBe(false);
});
