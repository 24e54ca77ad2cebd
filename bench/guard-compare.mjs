#!/usr/bin/env node
// The guard suite side by side: this checkout's dist/ against another build's (e.g. an older commit),
// alternating rounds in one run, each measurement in its own child process, both on this checkout's
// addon and mock. Reaction times run one side after the other; CPU runs both sides at once (paired).
//
//   node bench/guard-compare.mjs --baseline <dir holding dist/cjs> [--rounds 8] [--crossings 60] [--cpu-seconds 6]
//
// A baseline from an older commit, without touching this checkout:
//   git archive <commit> src tsconfig.json package.json binding.gyp scripts | tar -x -C /tmp/base
//   ln -s "$PWD/node_modules" /tmp/base/node_modules && (cd /tmp/base && node scripts/build-ts.mjs)
import { execFile } from 'node:child_process';
import os from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

import { summarize } from './lib/stats.mjs';

const execFileAsync = promisify(execFile);
const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const GiB = 2 ** 30;

function parseArgs(argv) {
  const options = { baseline: null, rounds: 8, crossings: 60, cpuSeconds: 6 };
  for (let i = 0; i < argv.length; i += 1) {
    const [name, value] = [argv[i], argv[i + 1]];
    if (name === '--baseline') options.baseline = resolve(value);
    else if (name === '--rounds') options.rounds = Number(value);
    else if (name === '--crossings') options.crossings = Number(value);
    else if (name === '--cpu-seconds') options.cpuSeconds = Number(value);
    else throw new Error(`unknown option ${name} (known: --baseline, --rounds, --crossings, --cpu-seconds)`);
    i += 1;
  }
  if (!options.baseline) throw new Error('--baseline <dir holding dist/cjs> is required');
  return options;
}

const median = (values) => summarize(values).median;

async function main() {
  const options = parseArgs(process.argv.slice(2));
  const env = { ...process.env, VRAMGUARD_BINDING: process.env.VRAMGUARD_BINDING || join(root, 'build', 'Release', 'vramguard.node') };
  const sides = [
    { name: 'baseline', dist: join(options.baseline, 'dist', 'cjs') },
    { name: 'this checkout', dist: join(root, 'dist', 'cjs') },
  ];
  const testing = (await import(join(root, 'dist', 'cjs', 'testing', 'index.js'))).default;
  const cpuMock = testing.createMockNvml({
    devices: Array.from({ length: 8 }, (_, i) => testing.mockDevice(i, 80, { processes: [{ pid: 1, usedBytes: GiB, smUtilPercent: 10 }] })),
  });
  const perRound = Object.fromEntries(sides.map((s) => [s.name, { medians: [], p99s: [], cpu: [] }]));
  const load0 = os.loadavg()[0];
  try {
    for (let round = 0; round < options.rounds; round += 1) {
      const order = round % 2 === 0 ? sides : [...sides].reverse();
      // Reaction times one side after the other (latency suffers from a neighbour)...
      for (const side of order) {
        const { stdout } = await execFileAsync(process.execPath, [join(root, 'bench', 'lib', 'reaction-child.mjs'), side.dist, String(options.crossings)], { env });
        const reactions = summarize(JSON.parse(stdout));
        perRound[side.name].medians.push(reactions.median);
        perRound[side.name].p99s.push(reactions.p99);
        console.error(`round ${round + 1} ${side.name}: reaction median ${reactions.median.toFixed(2)} ms, p99 ${reactions.p99.toFixed(2)} ms`);
      }
      // ...CPU of both at once, so that both see the same machine (a paired measurement).
      const cpus = await Promise.all(
        order.map((side) =>
          execFileAsync(process.execPath, [join(root, 'bench', 'lib', 'cpu-child.cjs'), 'guard', String(options.cpuSeconds)], {
            env: { ...env, ...cpuMock.env, VRAMGUARD_ENTRY: join(side.dist, 'index.js') },
          }).then(({ stdout }) => ({ side, cpu: JSON.parse(stdout) })),
        ),
      );
      for (const { side, cpu } of cpus) {
        const cpuPercent = ((cpu.userMs + cpu.systemMs) / cpu.wallMs) * 100;
        perRound[side.name].cpu.push(cpuPercent);
        console.error(`round ${round + 1} ${side.name}: CPU ${cpuPercent.toFixed(2)} %`);
      }
    }
  } finally {
    cpuMock.cleanup();
  }
  console.log(`guard side by side, ${new Date().toISOString()}: ${options.rounds} alternating rounds, ${options.crossings} crossings and ${options.cpuSeconds} s of CPU per side per round`);
  console.log(`${os.cpus()[0]?.model}, ${os.cpus().length} cores; node ${process.version}; load average at start ${load0.toFixed(2)}, at end ${os.loadavg()[0].toFixed(2)}`);
  console.log('| build | reaction median (median of rounds) | reaction p99 (median of rounds) | CPU % of one core, VramGuard at 100 Hz (median of rounds) |');
  console.log('|---|---:|---:|---:|');
  for (const side of sides) {
    const r = perRound[side.name];
    console.log(`| ${side.name} | ${median(r.medians).toFixed(2)} ms | ${median(r.p99s).toFixed(2)} ms | ${median(r.cpu).toFixed(2)} % |`);
  }
  const [base, mine] = sides.map((s) => perRound[s.name]);
  const pairedCpu = median(mine.cpu.map((c, i) => c / base.cpu[i]));
  console.log(
    `ratios this/baseline: reaction median ${(median(mine.medians) / median(base.medians)).toFixed(3)}, p99 ${(median(mine.p99s) / median(base.p99s)).toFixed(3)}, ` +
      `CPU ${(median(mine.cpu) / median(base.cpu)).toFixed(3)} (median of the per-round paired ratios ${pairedCpu.toFixed(3)})`,
  );
}

main().catch((error) => {
  console.error(error instanceof Error ? error.stack : error);
  process.exitCode = 1;
});
