// Builds what the benchmarks need, only when it is missing (or stale, for the raw C loop):
//   dist/cjs        node scripts/build-ts.mjs (tsc), called directly rather than through npm so that no
//                   npm pre-hook (such as a "prebuild" script) runs with it
//   the addon       npx node-gyp rebuild -> build/Release/vramguard.node and build/Release/mock/
//   the raw C loop  cc -O2 -std=c11 -pthread -Inative bench/raw_nvml_loop.c -o bench/out/raw_nvml_loop -ldl
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

function run(command, args, cwd, log) {
  log(`$ ${[command, ...args].join(' ')}`);
  execFileSync(command, args, { cwd, stdio: ['ignore', 'inherit', 'inherit'] });
}

function mtime(path) {
  return existsSync(path) ? statSync(path).mtimeMs : -Infinity;
}

/** dist/cjs from the TypeScript sources, when missing (or when force is set). */
export function ensureDist(root, { force = false, log = console.error } = {}) {
  if (!force && existsSync(join(root, 'dist', 'cjs', 'index.js'))) return;
  run(process.execPath, [join('scripts', 'build-ts.mjs')], root, log);
}

/**
 * The addon and its mock NVML, when missing. VRAMGUARD_BINDING (another build of the addon, e.g.
 * cmake-js's) is used as is.
 */
export function ensureAddon(root, { force = false, log = console.error } = {}) {
  if (process.env.VRAMGUARD_BINDING) return;
  const release = join(root, 'build', 'Release');
  const built = existsSync(join(release, 'vramguard.node')) && existsSync(join(release, 'mock', 'libnvidia-ml.so.1'));
  if (!force && built) return;
  run('npx', ['node-gyp', 'rebuild'], root, log);
}

/** Compiles bench/raw_nvml_loop.c when its binary is missing or older than the source or the header. */
export function buildRawLoop(root, { force = false, log = console.error } = {}) {
  const source = join('bench', 'raw_nvml_loop.c');
  const binary = join('bench', 'out', 'raw_nvml_loop');
  const newest = Math.max(mtime(join(root, source)), mtime(join(root, 'native', 'nvml_api.h')));
  mkdirSync(join(root, 'bench', 'out'), { recursive: true });
  if (force || mtime(join(root, binary)) < newest) {
    run(process.env.CC || 'cc', ['-O2', '-std=c11', '-pthread', '-Inative', source, '-o', binary, '-ldl'], root, log);
  }
  return join(root, binary);
}
