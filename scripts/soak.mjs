// Soak runs (issue 9): memory must stay flat over a long steady state.
//   1. native  1,000,000 passes back to back through the native reader (native/test/reader_soak.cc, no
//              Node, no sleep) over 8 mocked GPUs: resident memory drift at most 1 MiB.
//   2. sampler a Sampler at 10 ms with 'sample' and 'watermark' listeners, watermarks moved every
//              second so they cross both ways, next() and latest() calls, for minutes
//              (scripts/soak-sampler.cjs, with --expose-gc): heap and RSS after GC, warm-up excluded.
// node scripts/soak.mjs           the long versions (npm run soak): 1,000,000 passes, 5 minutes
// node scripts/soak.mjs --short   the CI versions (.ci/run): 100,000 passes, 20 seconds
// Prints the figures; exits non-zero when a limit is passed.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);
const short = process.argv.includes('--short');
const settings = short ? { passes: 100_000, sampler: { seconds: 20 } } : { passes: 1_000_000, sampler: { seconds: 300 } };

if (!existsSync(join(root, 'dist', 'cjs', 'testing', 'index.js'))) {
  execFileSync(process.execPath, [join(root, 'scripts', 'build-ts.mjs')], { stdio: 'inherit', cwd: root });
}
const testing = require(join(root, 'dist', 'cjs', 'testing', 'index.js'));
const { benchScenario } = await import(join(root, 'bench', 'lib', 'scenario.mjs'));

// The native soak binary, from the core sources (no Node), like the sanitizer harness.
const out = join(root, 'build', 'soak');
mkdirSync(out, { recursive: true });
const binary = join(out, 'reader_soak');
const core = JSON.parse(readFileSync(join(root, 'native', 'sources.json'), 'utf8')).core;
execFileSync('g++', ['-O2', '-std=c++17', '-Inative', 'native/test/reader_soak.cc', ...core, '-o', binary, '-ldl', '-pthread'], {
  cwd: root,
  stdio: 'inherit',
});

const mock = testing.createMockNvml(benchScenario(testing));
let failed = false;
try {
  console.log(`== native reader: ${settings.passes.toLocaleString('en')} passes back to back, 8 mocked GPUs`);
  const native = spawnSync(binary, [mock.libraryPath, String(settings.passes)], {
    env: { ...process.env, ...mock.env },
    encoding: 'utf8',
  });
  if (native.status === 2 || native.error) throw new Error(`reader_soak could not run: ${native.stderr || native.error}`);
  const figures = JSON.parse(native.stdout);
  console.log(
    `   ${figures.passes} passes in ${figures.seconds} s; RSS ${figures.rssAfterWarmupKiB} KiB after the warm-up tenth, ` +
      `${figures.rssEndKiB} KiB at the end: drift ${figures.driftKiB} KiB (limit ${figures.limitKiB} KiB): ${native.status === 0 ? 'ok' : 'FAILED'}`,
  );
  failed ||= native.status !== 0;

  console.log(`== Sampler at 10 ms with listeners and watermarks, ${settings.sampler.seconds} s`);
  const sampler = spawnSync(
    process.execPath,
    ['--expose-gc', join(root, 'scripts', 'soak-sampler.cjs'), String(settings.sampler.seconds)],
    { env: { ...process.env, ...mock.env }, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] },
  );
  if (sampler.status === 2 || sampler.error || !sampler.stdout) throw new Error(`soak-sampler could not run (${sampler.status})`);
  const js = JSON.parse(sampler.stdout);
  const MiB = 2 ** 20;
  console.log(
    `   ${js.passes} passes seen, ${js.crossings} watermark crossings, ${js.nexts} next() resolved; after GC, warm-up excluded: ` +
      `heap ${(js.heapStart / MiB).toFixed(2)} -> ${(js.heapEnd / MiB).toFixed(2)} MiB (max ${(js.heapMax / MiB).toFixed(2)}), ` +
      `RSS ${(js.rssStart / MiB).toFixed(1)} -> ${(js.rssEnd / MiB).toFixed(1)} MiB (max ${(js.rssMax / MiB).toFixed(1)}); ` +
      `limits: heap +${js.limits.heapMiB} MiB, RSS +${js.limits.rssMiB} MiB: ${sampler.status === 0 ? 'ok' : 'FAILED'}`,
  );
  failed ||= sampler.status !== 0;
} finally {
  mock.cleanup();
}
process.exit(failed ? 1 : 0);
