#!/usr/bin/env node
// vramguard's benchmarks: `npm run bench` (node bench/run.mjs).
//
//   node bench/run.mjs [SUITE...] [--quick] [--rebuild]
//     SUITE      run only these suites (default: all); see SUITES below
//     --quick    short rounds: a smoke test of the harness, not figures to quote
//     --rebuild  rebuild dist/ and the raw C loop even when present
//
// Builds what is missing (dist/ with scripts/build-ts.mjs, the addon with node-gyp, the raw C loop with cc),
// runs the suites one after the other, prints a table per section and writes everything, with the
// machine and the date, to bench/out/latest.json.
//
// Adding a benchmark: write bench/<name>.mjs exporting `id`, `title` and `async run(ctx)` that returns
// { id, title, results, tables: [{ title, columns, rows, footer? }] }, and list it in SUITES.
import { mkdirSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

import * as cli from './cli.mjs';
import * as core from './core.mjs';
import * as guard from './guard.mjs';
import * as instructions from './instructions.mjs';
import * as keepaliveCost from './keepalive-cost.mjs';
import * as nodewide from './nodewide.mjs';
import * as runtimes from './runtimes.mjs';
import * as traces from './traces.mjs';
import { buildRawLoop, ensureAddon, ensureDist } from './lib/build.mjs';
import { formatTable } from './lib/table.mjs';

/** Every suite, in the order they run. */
const SUITES = [core, instructions, guard, traces, keepaliveCost, cli, nodewide, runtimes];

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const log = (line) => console.error(line);

function parseArgs(argv) {
  const options = { quick: false, rebuild: false, suites: [] };
  for (const arg of argv) {
    if (arg === '--quick') options.quick = true;
    else if (arg === '--rebuild') options.rebuild = true;
    else if (arg.startsWith('-')) throw new Error(`unknown option ${arg} (known: --quick, --rebuild)`);
    else options.suites.push(arg);
  }
  const known = SUITES.map((s) => s.id);
  for (const name of options.suites) {
    if (!known.includes(name)) throw new Error(`unknown suite ${name} (known: ${known.join(', ')})`);
  }
  return options;
}

function machine() {
  const cpus = os.cpus();
  return {
    cpuModel: cpus[0]?.model ?? 'unknown',
    cores: cpus.length,
    totalMemoryGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    loadAverage: os.loadavg().map((l) => Math.round(l * 100) / 100),
    node: process.version,
    v8: process.versions.v8,
    platform: `${os.platform()} ${os.release()} ${os.arch()}`,
  };
}

function printSection(section) {
  console.log(`\n## ${section.title}\n`);
  for (const table of section.tables) {
    console.log(`${table.title}\n`);
    console.log(formatTable(table.columns, table.rows));
    for (const line of table.footer ?? []) console.log(line);
    console.log('');
  }
}

async function main() {
  const options = parseArgs(process.argv.slice(2));
  ensureDist(root, { force: options.rebuild, log });
  ensureAddon(root, { log });
  const rawLoopPath = buildRawLoop(root, { force: options.rebuild, log });
  // Measure the addon just built, not a prebuild that node-gyp-build would prefer (VRAMGUARD_BINDING,
  // when set, wins). The mock is found beside the addon (build/Release/mock/).
  process.env.VRAMGUARD_BINDING ||= join(root, 'build', 'Release', 'vramguard.node');

  const require = createRequire(import.meta.url);
  const ctx = {
    root,
    quick: options.quick,
    log,
    rawLoopPath,
    tmpdir: os.tmpdir(),
    vramguard: require('../dist/cjs/index.js'),
    testing: require('../dist/cjs/testing/index.js'),
    nvml: require('../dist/cjs/nvml.js'),
  };
  const info = machine();
  const startedAt = new Date();
  const command = `node bench/run.mjs${process.argv.length > 2 ? ` ${process.argv.slice(2).join(' ')}` : ''}`;
  console.log(`vramguard benchmarks, ${startedAt.toISOString()}${options.quick ? ' (--quick: not figures to quote)' : ''}`);
  console.log(`${info.cpuModel}, ${info.cores} cores, ${info.totalMemoryGiB} GiB; node ${info.node}; ${info.platform}`);
  console.log(`load average at start: ${info.loadAverage.join(' ')}; addon: ${relative(root, ctx.nvml.bindingPath())}`);

  const sections = {};
  for (const suite of SUITES) {
    if (options.suites.length > 0 && !options.suites.includes(suite.id)) continue;
    const section = await suite.run(ctx);
    sections[section.id] = { title: section.title, results: section.results };
    printSection(section);
  }

  const report = {
    date: startedAt.toISOString(),
    command,
    quick: options.quick,
    machine: { ...info, loadAverageAtEnd: os.loadavg().map((l) => Math.round(l * 100) / 100) },
    addon: relative(root, ctx.nvml.bindingPath()),
    sections,
  };
  mkdirSync(join(root, 'bench', 'out'), { recursive: true });
  const out = join(root, 'bench', 'out', 'latest.json');
  writeFileSync(out, `${JSON.stringify(report, null, 2)}\n`);
  console.log(`written: ${relative(root, out)}`);
}

main().catch((error) => {
  console.error(error instanceof Error ? error.stack : error);
  process.exitCode = 1;
});
