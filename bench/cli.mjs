// CLI benchmarks (issue "CLI"): what the standalone commands cost at their defaults on the 8-GPU example
// scenario (examples/scenarios/h100-8gpu-inference.json, bundled mock NVML), each in its own process:
//
//   serve              `vramguard serve` (1 s sampling), scraped over HTTP once a second (keep-alive),
//                      the way one Prometheus server would; also with --processes
//   watch              `vramguard watch` (1 s) in a 120x40 pseudo-terminal (tmux); the tmux server's own
//                      CPU is not counted, the bytes the CLI writes to the terminal are
//   sample             `vramguard sample` (1 s, NDJSON) into /dev/null
//   idle Node          `node -e "setInterval(() => {}, 1000)"`: the floor every Node process pays
//
// CPU: utime + stime of the CLI's process (every thread: JS, the native sampler, libuv) from
// /proc/<pid>/stat, over a window after a warm-up; RSS from /proc/<pid>/status at the end (VmRSS) and
// its peak (VmHWM). The clock tick is 10 ms, so over a 20 s window the CPU figure is good to 0.05 %.
//
//   node bench/run.mjs cli [--quick]      (or: node bench/cli.mjs [--quick] on its own)
import { execFileSync, spawn } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { Agent, request } from 'node:http';
import os from 'node:os';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';

import { summarize } from './lib/stats.mjs';

export const id = 'cli';
export const title = 'CLI: CPU and memory of serve, watch and sample at their defaults (8 mocked GPUs)';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const CLI = join(root, 'dist', 'cjs', 'cli', 'main.js');
const SCENARIO = join(root, 'examples', 'scenarios', 'h100-8gpu-inference.json');
const TICK_MS = 1000 / Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim() || 100);

function settings(quick) {
  return quick ? { warmupMs: 2000, windowMs: 4000 } : { warmupMs: 5000, windowMs: 20_000 };
}

async function until(predicate, what, timeoutMs = 15_000) {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`bench cli: timed out waiting for ${what}`);
    await sleep(20);
  }
}

/** CPU time (ms, all threads) of a process so far, from /proc/<pid>/stat. */
function cpuMs(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // After "(comm) ": state is field 3, utime 14 and stime 15 (1-based in proc(5)).
  return { user: Number(fields[11]) * TICK_MS, system: Number(fields[12]) * TICK_MS };
}

function memory(pid) {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = (key) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN) * 1024;
  return { rss: kib('VmRSS'), peakRss: kib('VmHWM') };
}

/** Measures `pid` over the window; `during` runs alongside (the scrape loop) until the window ends. */
async function measure(pid, s, during = async () => {}) {
  await sleep(s.warmupMs);
  const before = cpuMs(pid);
  const start = performance.now();
  const stop = { done: false };
  const load = during(stop);
  await sleep(s.windowMs);
  stop.done = true;
  await load;
  const after = cpuMs(pid);
  const wallMs = performance.now() - start;
  const userMs = after.user - before.user;
  const systemMs = after.system - before.system;
  return { wallMs, userMs, systemMs, cpuPercent: ((userMs + systemMs) / wallMs) * 100, ...memory(pid) };
}

function cliEnv() {
  const env = { ...process.env };
  for (const key of Object.keys(env)) if (key.startsWith('VRAMGUARD_MOCK') || key === 'VRAMGUARD_NVML_LIBRARY') delete env[key];
  return env;
}

function startChild(args) {
  const child = spawn(process.execPath, args, { env: cliEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (d) => (stderr += d));
  child.stdout.resume();
  return { child, stderr: () => stderr };
}

async function stopChild(child) {
  if (child.exitCode !== null) return child.exitCode;
  const exited = new Promise((resolve) => child.on('close', (code) => resolve(code)));
  child.kill('SIGTERM');
  return exited;
}

function get(agent, url) {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const req = request(url, { agent }, (res) => {
      let bytes = 0;
      res.on('data', (chunk) => (bytes += chunk.length));
      res.on('end', () => resolve({ status: res.statusCode, bytes, ms: performance.now() - started }));
    });
    req.on('error', reject);
    req.end();
  });
}

async function benchServe(scenario, s, extraArgs, label) {
  const { child, stderr } = startChild([CLI, 'serve', '--mock', scenario, '--listen', '127.0.0.1:0', ...extraArgs]);
  try {
    await until(() => /listening on (http:\/\/\S+)/.test(stderr()), `${label} to listen (${stderr()})`);
    const url = /listening on (http:\/\/\S+)/.exec(stderr())[1];
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    const scrapes = [];
    let bytes = 0;
    const result = await measure(child.pid, s, async (stop) => {
      while (!stop.done) {
        const r = await get(agent, url);
        if (r.status !== 200) throw new Error(`bench cli: scrape answered ${r.status}`);
        scrapes.push(r.ms);
        bytes = r.bytes;
        await sleep(1000);
      }
    });
    agent.destroy();
    return { ...result, scrapes: scrapes.length, scrapeMs: summarize(scrapes), exposedBytes: bytes };
  } finally {
    await stopChild(child);
  }
}

async function benchSample(scenario, s) {
  const { child } = startChild([CLI, 'sample', '--mock', scenario]);
  try {
    return await measure(child.pid, s);
  } finally {
    await stopChild(child);
  }
}

async function benchIdle(s) {
  const { child } = startChild(['-e', 'setInterval(() => {}, 1000)']);
  try {
    return await measure(child.pid, s);
  } finally {
    await stopChild(child);
  }
}

async function benchWatch(scenario, s, dir) {
  const socket = `vramguard-bench-${process.pid}`;
  const tmux = (...args) =>
    execFileSync('tmux', ['-u', '-L', socket, ...args], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...cliEnv(), LANG: 'C.UTF-8', LC_ALL: 'C.UTF-8' },
    });
  const script = join(dir, 'watch.sh');
  const log = join(dir, 'watch.out');
  writeFileSync(log, '');
  writeFileSync(script, `exec '${process.execPath}' '${CLI}' watch --mock '${scenario}'\n`);
  const config = join(dir, 'tmux.conf');
  writeFileSync(config, 'set -g status off\n');
  tmux('-f', config, 'new-session', '-d', '-x', '120', '-y', '40', '-s', 'bench', `sh ${script}`);
  try {
    tmux('pipe-pane', '-o', '-t', 'bench', `cat >> '${log}'`);
    const pid = Number(tmux('display-message', '-p', '-t', 'bench', '#{pane_pid}').trim());
    await until(() => tmux('capture-pane', '-p', '-t', 'bench').includes(' GPU 7 '), 'watch to draw');
    await sleep(s.warmupMs);
    const bytesBefore = statSync(log).size;
    const result = await measure(pid, { ...s, warmupMs: 0 });
    const bytes = statSync(log).size - bytesBefore;
    tmux('send-keys', '-t', 'bench', 'q');
    await until(() => {
      try {
        process.kill(pid, 0);
        return false;
      } catch {
        return true;
      }
    }, 'watch to quit');
    return { ...result, terminalBytesPerSecond: bytes / (result.wallMs / 1000) };
  } finally {
    try {
      tmux('kill-server');
    } catch {
      // gone
    }
  }
}

export async function run(ctx = { quick: process.argv.includes('--quick'), log: (l) => console.error(l) }) {
  const s = settings(ctx.quick);
  const dir = mkdtempSync(join(os.tmpdir(), 'vramguard-bench-cli-'));
  const scenario = join(dir, 'h100-8gpu-inference.json');
  copyFileSync(SCENARIO, scenario);
  const results = { windowMs: s.windowMs, warmupMs: s.warmupMs, scenario: 'examples/scenarios/h100-8gpu-inference.json' };
  try {
    ctx.log('cli: idle Node');
    results.idle = await benchIdle(s);
    ctx.log('cli: serve (defaults), scraped every second');
    results.serve = await benchServe(scenario, s, [], 'serve');
    ctx.log('cli: serve --processes, scraped every second');
    results.serveProcesses = await benchServe(scenario, s, ['--processes'], 'serve --processes');
    ctx.log('cli: watch in a 120x40 tmux pane');
    results.watch = await benchWatch(scenario, s, dir);
    ctx.log('cli: sample > /dev/null');
    results.sample = await benchSample(scenario, s);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }

  const MiB = (b) => `${(b / 2 ** 20).toFixed(1)} MiB`;
  const pct = (v) => `${v.toFixed(2)} %`;
  const ms = (v) => `${v.toFixed(0)} ms`;
  const row = (name, r) => [name, pct(r.cpuPercent), ms(r.userMs), ms(r.systemMs), MiB(r.rss), MiB(r.peakRss)];
  return {
    id,
    title,
    results,
    tables: [
      {
        title: `Whole-process CPU over ${s.windowMs / 1000} s after ${s.warmupMs / 1000} s of warm-up; RSS at the end and its peak`,
        columns: [{ title: 'command' }, ...['CPU % of one core', 'user', 'system', 'RSS', 'peak RSS'].map((t) => ({ title: t, align: 'right' }))],
        rows: [
          row('idle Node (baseline)', results.idle),
          row('serve, scraped every 1 s', results.serve),
          row('serve --processes, scraped every 1 s', results.serveProcesses),
          row('watch, 120x40 terminal', results.watch),
          row('sample > /dev/null', results.sample),
        ],
        footer: [
          `serve: ${results.serve.scrapes} scrapes, ${results.serve.exposedBytes} bytes each, ` +
            `scrape latency median ${results.serve.scrapeMs.median.toFixed(2)} ms, max ${results.serve.scrapeMs.max.toFixed(2)} ms ` +
            `(--processes: ${results.serveProcesses.exposedBytes} bytes, median ${results.serveProcesses.scrapeMs.median.toFixed(2)} ms)`,
          `watch: ${(results.watch.terminalBytesPerSecond / 1024).toFixed(1)} KiB/s written to the terminal (only the lines that changed are redrawn)`,
        ],
      },
    ],
  };
}

// `node bench/cli.mjs [--quick]`: this suite alone, printed as JSON.
if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  run().then(
    (section) => console.log(JSON.stringify(section, null, 2)),
    (error) => {
      console.error(error);
      process.exitCode = 1;
    },
  );
}
