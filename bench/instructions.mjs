// Instructions per sampling pass, counted by valgrind's callgrind: the native reader (the code the
// sampler thread runs each pass, bench/reader_loop.cc) against the raw C loop (bench/raw_nvml_loop.c),
// on the same mock scenario. Instruction counts do not depend on what else the machine is doing, so
// this ratio is the noise-free complement of the timed one in the core suite. Per-pass figures are
// (count for N + 1 passes - count for 1 pass) / N, so start-up and NVML initialization cancel out.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { benchScenario } from './lib/scenario.mjs';

export const id = 'instructions';
export const title = 'Instructions per pass (callgrind): native reader vs raw C loop';

function buildReaderLoop(root) {
  const out = join(root, 'bench', 'out', 'reader_loop');
  const sources = JSON.parse(readFileSync(join(root, 'native', 'sources.json'), 'utf8')).core;
  execFileSync('g++', ['-O2', '-std=c++17', '-Inative', 'bench/reader_loop.cc', ...sources, '-o', out, '-ldl', '-pthread'], { cwd: root });
  return out;
}

function callgrind(command, args, env) {
  const dir = mkdtempSync(join(tmpdir(), 'vramguard-cg-'));
  try {
    const result = spawnSync('valgrind', ['--tool=callgrind', `--callgrind-out-file=${join(dir, 'out')}`, command, ...args], { env, encoding: 'utf8' });
    const match = /Collected : (\d+)/.exec(result.stderr) ?? /I\s+refs:\s+([\d,]+)/.exec(result.stderr);
    if (result.status !== 0 || !match) throw new Error(`callgrind ${command} failed: ${result.stderr.slice(-400)}`);
    return Number(match[1].replace(/,/g, ''));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function run(ctx) {
  if (spawnSync('sh', ['-c', 'command -v valgrind']).status !== 0) {
    return { id, title, results: { skipped: 'valgrind not installed' }, tables: [{ title: 'skipped: valgrind not installed', columns: [{ title: '' }], rows: [] }] };
  }
  const passes = ctx.quick ? 200 : 2000;
  const readerLoop = buildReaderLoop(ctx.root);
  const dir = mkdtempSync(join(tmpdir(), 'vramguard-instr-'));
  const scenario = join(dir, 'scenario.json');
  // Critical XID events unsupported: the raw loop then starts no event-waiting thread (the sampler's
  // lost-GPU watcher, which reader_loop does not run), whose polling of the mock would count with the
  // wall time valgrind takes, not with the passes.
  const events = [{ function: 'nvmlDeviceGetSupportedEventTypes', return: 'NOT_SUPPORTED' }];
  writeFileSync(scenario, JSON.stringify({ ...benchScenario(ctx.testing), era: '580', errors: events }));
  const library = ctx.testing.mockLibraryPath();
  const env = { ...process.env, VRAMGUARD_MOCK_SCENARIO: scenario, VRAMGUARD_MOCK_CONTROL: join(dir, 'control') };
  try {
    const perPass = (command, args) => (callgrind(command, args(passes + 1), env) - callgrind(command, args(1), env)) / passes;
    ctx.log('instructions: raw C loop');
    const raw = perPass(ctx.rawLoopPath, (n) => [library, '--passes', String(n), '--warmup', '0', '--interval-ms', '0']);
    ctx.log('instructions: native reader');
    const reader = perPass(readerLoop, (n) => [library, String(n)]);
    const ratio = reader / raw;
    const k = (v) => `${(v / 1000).toFixed(1)} k`;
    return {
      id,
      title,
      results: { passes, rawInstructionsPerPass: raw, readerInstructionsPerPass: reader, ratio },
      tables: [
        {
          title: `Instructions per pass, 8 devices x 4 processes, ${passes} passes (mock NVML included on both sides)`,
          columns: [{ title: 'side' }, { title: 'instructions / pass', align: 'right' }],
          rows: [
            ['raw C loop', k(raw)],
            ['native reader (sampler pass)', k(reader)],
          ],
          footer: [`ratio reader/raw: ${ratio.toFixed(3)} (goal <= 1.1: ${ratio <= 1.1 ? 'met' : 'NOT met'})`],
        },
      ],
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
