// What a user gets from the npm package. A plain `npm pack` (prepack builds the prebuild) in a copy of
// the tree ships prebuilds/linux-x64/ (addon + mock NVML) and no native test sources; the tarball
// installs into a fresh project with no compiler, make or Python on the PATH (so node-gyp can never
// run), and loads and samples the shipped mock; the binaries need no newer glibc than the README says;
// a source install (no prebuild) configures the addon only, without the mocks.
import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';

import { afterAll, beforeAll, expect, it, vi } from 'vitest';

// Packing rebuilds the addon and the mocks: minutes on a loaded two-core machine.
vi.setConfig({ testTimeout: 300_000, hookTimeout: 1_200_000 });

const root = join(__dirname, '..', '..');
const arch = `${process.platform}-${process.arch}`;
let work: string;
let tarball: string;
let packed: string[];
let installed: string;
let installLog: string;

/** The environment of a user's shell: ours, less npm's lifecycle variables, with the given PATH. */
function userEnv(path: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (!/^npm_/i.test(key) && !key.startsWith('VRAMGUARD_') && key !== 'PREBUILDS_ONLY') env[key] = value;
  }
  env.VRAMGUARD_TEST_RUN = process.env.VRAMGUARD_TEST_RUN; // test/global-processes.ts follows it
  env.PATH = path;
  return env;
}

/** A bin folder with node, npm and sh (npm runs scripts with it) only: no cc, c++, make, python3. */
function nodeOnlyPath(dir: string): string {
  mkdirSync(dir);
  symlinkSync(process.execPath, join(dir, 'node'));
  symlinkSync('/bin/sh', join(dir, 'sh'));
  const npm = (process.env.PATH ?? '').split(':').map((d) => join(d, 'npm')).find((f) => existsSync(f));
  expect(npm, 'npm on the PATH').toBeDefined();
  symlinkSync(realpathSync(npm!), join(dir, 'npm'));
  for (const tool of ['cc', 'gcc', 'c++', 'g++', 'make', 'python3', 'python', 'node-gyp']) {
    expect(existsSync(join(dir, tool))).toBe(false);
  }
  return dir;
}

beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'vramguard-pack-'));
  // A copy of the development tree, as a fresh clone has it after `npm install` (no prebuilds/).
  const tree = join(work, 'tree');
  mkdirSync(tree);
  for (const entry of ['package.json', 'binding.gyp', 'CMakeLists.txt', 'native', 'scripts', 'src', 'tsconfig.json', 'dist', 'examples', 'README.md']) {
    if (existsSync(join(root, entry))) cpSync(join(root, entry), join(tree, entry), { recursive: true });
  }
  symlinkSync(join(root, 'node_modules'), join(tree, 'node_modules'), 'dir');
  // Plain, as a maintainer runs it: its scripts (prepack) print to stdout, so the tarball is found on disk.
  execFileSync('npm', ['pack', '--pack-destination', work], { cwd: tree, stdio: ['ignore', 'pipe', 'pipe'] });
  const tarballs = readdirSync(work).filter((f) => f.endsWith('.tgz'));
  expect(tarballs).toHaveLength(1);
  tarball = join(work, tarballs[0]!);
  packed = execFileSync('tar', ['-tzf', tarball], { encoding: 'utf8' })
    .split('\n')
    .filter((line) => line && !line.endsWith('/'))
    .map((line) => line.replace(/^package\//, ''));

  // A user's project, installing the tarball with nothing but node and npm on the PATH.
  const project = join(work, 'project');
  mkdirSync(project);
  writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'user-project', version: '1.0.0', private: true }));
  const install = spawnSync(
    process.execPath,
    [join(work, 'bin', 'npm'), 'install', '--prefer-offline', '--no-audit', '--no-fund', '--foreground-scripts', tarball],
    { cwd: project, env: userEnv(nodeOnlyPath(join(work, 'bin'))), encoding: 'utf8' },
  );
  installLog = `${install.stdout}${install.stderr}`;
  expect(install.status, installLog).toBe(0);
  installed = join(project, 'node_modules', 'vramguard');
});
afterAll(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

it('a plain npm pack ships the prebuild and the mock NVML, the sources of both builds, no native tests', () => {
  expect(packed).toEqual(
    expect.arrayContaining([
      `prebuilds/${arch}/vramguard.node`,
      `prebuilds/${arch}/mock/libnvidia-ml.so.1`,
      `prebuilds/${arch}/mock-eras/libnvidia-ml-418.so.1`,
      'binding.gyp',
      'CMakeLists.txt',
      'native/sources.json',
      'native/nvml_api.h',
      'native/mock/mock_nvml.cc',
      'dist/cjs/index.js',
      'dist/esm/index.js',
      'dist/cjs/testing/index.js',
    ]),
  );
  // Nothing named like the real library sits beside the addon; no build output, no test sources.
  expect(packed).not.toContain(`prebuilds/${arch}/libnvidia-ml.so.1`);
  expect(packed.filter((f) => f.startsWith('build/') || f.startsWith('native/test/') || f.startsWith('native/mock/test/'))).toEqual([]);
});

it('installs with no compiler on the PATH: node-gyp never runs, the prebuild loads and samples the shipped mock', () => {
  // The install script ran (node-gyp-build found the prebuild), node-gyp did not.
  expect(installLog).toMatch(/> node-gyp-build/);
  expect(installLog).not.toMatch(/gyp (info|WARN|ERR!)|node-gyp rebuild/);
  expect(existsSync(join(installed, 'build'))).toBe(false);
  const script = `
    const { createMockNvml, mockDevice, mockLibraryPath } = require('vramguard/testing');
    const mock = createMockNvml({ devices: [mockDevice(0, 24)] });
    mock.activate();
    const { Sampler } = require('vramguard');
    const { bindingPath } = require(require('node:path').join(require.resolve('vramguard/package.json'), '..', 'dist', 'cjs', 'nvml.js'));
    const s = new Sampler({ interval: '10ms' }).start();
    s.next().then((snap) => {
      s.close();
      mock.cleanup();
      console.log(JSON.stringify({ binding: bindingPath(), mock: mockLibraryPath(), total: snap.devices[0].memoryTotalBytes }));
    });`;
  const out = execFileSync(process.execPath, ['-e', script], { cwd: join(installed, '..', '..'), env: userEnv(join(work, 'bin')), encoding: 'utf8' });
  const result = JSON.parse(out) as { binding: string; mock: string; total: number };
  expect(relative(installed, result.binding)).toBe(join('prebuilds', arch, 'vramguard.node'));
  expect(relative(installed, result.mock)).toBe(join('prebuilds', arch, 'mock', 'libnvidia-ml.so.1'));
  expect(result.total).toBe(24 * 2 ** 30);
});

it('the shipped binaries need no newer glibc than the README states', () => {
  const stated = /glibc (\d+\.\d+) or newer/.exec(readFileSync(join(root, 'README.md'), 'utf8'));
  expect(stated, 'README states "glibc X.Y or newer"').not.toBeNull();
  const dir = join(installed, 'prebuilds', arch);
  const binaries = readdirSync(dir, { recursive: true, encoding: 'utf8' }).filter((f) => /\.node$|\.so(\.\d+)*$/.test(f));
  // The addon, the default mock and one mock per other driver era (native/sources.json's mockEras).
  const eras = Object.keys(JSON.parse(readFileSync(join(root, 'native', 'sources.json'), 'utf8')).mockEras as Record<string, number>);
  expect(binaries.length).toBe(1 + eras.length);
  const version = (v: string) => v.split('.').map(Number) as [number, number];
  const newer = (a: string, b: string) => version(a)[0] - version(b)[0] || version(a)[1] - version(b)[1];
  const needs = binaries.map((file) => {
    const dynamic = execFileSync('objdump', ['-T', join(dir, file)], { encoding: 'utf8' });
    const versions = [...dynamic.matchAll(/\bGLIBC_(\d+\.\d+)(?:\.\d+)?\b/g)].map((m) => m[1]!);
    return { file, glibc: versions.sort(newer).at(-1)! };
  });
  const floor = needs.map((n) => n.glibc).sort(newer).at(-1)!;
  expect({ floor, needs }).toEqual({ floor: stated![1], needs });
});

it('a source install configures the addon only: the mocks are development builds', () => {
  // Beside the installed package, so node-addon-api resolves as in a real install.
  const copy = join(installed, '..', 'vramguard-from-source');
  cpSync(installed, copy, { recursive: true });
  rmSync(join(copy, 'prebuilds'), { recursive: true });
  const nodeGyp = join(root, 'node_modules', 'node-gyp', 'bin', 'node-gyp.js');
  // Our environment: node-gyp finds the node headers the development build used (npm's nodedir/devdir).
  execFileSync(process.execPath, [nodeGyp, 'configure'], { cwd: copy, stdio: 'pipe' });
  const targets = readdirSync(join(copy, 'build')).filter((f) => f.endsWith('.target.mk'));
  expect(targets).toEqual(['vramguard.target.mk']);
});
