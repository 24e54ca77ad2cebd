// The check to run on a GPU machine (see ../shared/gpu/README.md): in one call of a few minutes it
// compares every field vramguard reads with nvidia-smi and NVIDIA's Python binding, starts a PyTorch
// process holding a known number of bytes and waits for its pid to appear, reads a busy one's SM
// utilization beside pynvml, has a guard evict a torch-backed worker, times vramguard's pass, the same
// NVML calls from a plain C loop, pynvml and an nvidia-smi spawn side by side, runs the CLI (info
// --json, a serve scrape), and compares our struct sizes and offsets with the machine's nvml.h.
// Results: $OUT/gpu-check.json and gpu-check.md. How to run it there: bench/RESULTS.md, "GPU check".
//
//   bash .gpu/run.sh node bench/gpu/check.mjs            (on the GPU machine)
//   node bench/gpu/check.mjs --dry-run                   (here: on the mock, nvidia-smi and pynvml played
//                                                         by stand-ins; what needs a GPU is skipped)
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { createHolders, poll } from './holders.mjs';
import { realReferences, standInReferences } from './references.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..', '..');
const require = createRequire(import.meta.url);
const packed = join(root, '.gpu', 'app', 'node_modules', 'vramguard');
const packageDir = process.env.VRAMGUARD_PACKAGE ?? (existsSync(packed) ? packed : root);
const vg = require(packageDir);
const testing = require(join(packageDir, 'dist', 'cjs', 'testing', 'index.js'));
const has = (tool) => spawnSync('sh', ['-c', `command -v ${tool}`]).status === 0;
const dryRun = process.argv.includes('--dry-run') || !has('nvidia-smi');
const out = process.env.OUT ?? join(tmpdir(), 'vramguard-gpu-check');
mkdirSync(out, { recursive: true });
const GiB = 2 ** 30;
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const results = { dryRun, date: new Date().toISOString(), package: packageDir, checks: [] };

/** Writes gpu-check.json and gpu-check.md as they stand: after every check, so a cut-off run keeps what it did. */
function writeResults() {
  writeFileSync(join(out, 'gpu-check.json'), `${JSON.stringify(results, null, 2)}\n`);
  const md = [`# vramguard GPU check (${results.date}${dryRun ? ', dry run on the mock' : ''})`, '', '| Check | Result | Note |', '| --- | --- | --- |',
    ...results.checks.map((c) => `| ${c.name} | ${c.status} | ${String(c.note).split('\n')[0].replace(/\|/g, '\\|')} |`)].join('\n');
  writeFileSync(join(out, 'gpu-check.md'), `${md}\n`);
  return md;
}

const skip = (name, why) => {
  results.checks.push({ name, status: 'skipped', note: why });
  writeResults();
};

// Every process a check starts, so that one that hangs or fails leaves none behind.
const children = new Set();
const track = (child) => {
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
};
process.on('exit', () => {
  for (const child of children) child.kill('SIGKILL');
});

// The whole run fits in 5 minutes: each check gets at most 60 s, and none starts once 4.5 have gone.
const runDeadline = Date.now() + 270_000;

/** Runs one check; a check still running after its time fails as timed out and the run goes on. */
async function check(name, fn) {
  const started = Date.now();
  const timeoutMs = Math.min(60_000, runDeadline - started);
  if (timeoutMs <= 0) return skip(name, "not started: the run's 4.5 minutes were spent");
  let timer;
  const timedOut = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${(timeoutMs / 1000).toFixed(0)} s`)), timeoutMs);
  });
  try {
    const { ok = true, note = '', data } = (await Promise.race([fn(), timedOut])) ?? {};
    results.checks.push({ name, status: ok ? 'ok' : 'fail', note, data, seconds: (Date.now() - started) / 1000 });
  } catch (error) {
    results.checks.push({ name, status: 'fail', note: String(error?.stack ?? error), seconds: (Date.now() - started) / 1000 });
  } finally {
    clearTimeout(timer);
  }
  writeResults();
}

const MiB = 2 ** 20;
// The dry run's GPU: an H200 as the machine has, with some memory in use that no process accounts for.
const scenario = {
  driverVersion: '580.65.06', nvmlVersion: '12.580.65.06', cudaDriverVersion: 13000,
  devices: [testing.mockDevice(0, 141, { name: 'NVIDIA H200', memory: { total: 141 * GiB, reserved: 512 * MiB, otherUsed: 300 * MiB } })],
};
const mockProcesses = []; // what the dry run's holders have put on GPU 0
let mock;
if (dryRun) {
  mock = testing.createMockNvml(scenario);
  mock.activate();
}

const references = dryRun ? standInReferences(scenario, () => mockProcesses) : realReferences(here);
// The steps with a PyTorch process need torch with CUDA for python3; without it they say so.
const torchReady = dryRun || spawnSync('python3', ['-c', 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)']).status === 0;
const torchCheck = (name, fn) => (torchReady ? check(name, fn) : skip(name, 'no PyTorch with CUDA for python3 here'));
const { pidsOnGpu0, startHolder, waitForHolder, stopHolder } = createHolders({ vg, mock, mockProcesses, track });

// ---- 1. Every field against nvidia-smi and pynvml, read in the same run ---------------------------
/** `value` in `unit`s; null (not supported) and undefined (not read) stay as they are. */
const per = (value, unit) => (value === null || value === undefined ? value : value / unit);
const cudaText = (v) => (typeof v === 'number' ? `${Math.floor(v / 1000)}.${Math.floor((v % 1000) / 10)}` : v ?? null);
await check('fields: vramguard vs nvidia-smi vs pynvml', () => {
  const { system, snapshot } = vg.nvml.readOnce();
  const smi = references.gpus();
  const py = references.pynvml?.(5) ?? null;
  // What each tool reports for a field (pynvml only where nvidia-ml-py is installed).
  const refs = (smiValue, pyValue) => (py ? { nvidiaSmi: smiValue, pynvml: pyValue } : { nvidiaSmi: smiValue });
  const rows = [];
  const mismatches = [];
  // `theirs`: refs(), or the one tool that reports the field.
  const compare = (gpu, field, mine, theirs, tolerance = 0) => {
    const same = (a, b) => {
      if (a === undefined || b === undefined) return false; // a reading missing from one side's output
      if (a === null || b === null) return a === null && b === null; // both say "not supported"
      return tolerance === 0 ? String(a) === String(b) : Math.abs(Number(a) - Number(b)) <= tolerance;
    };
    const ok = Object.values(theirs).every((value) => same(mine, value));
    rows.push({ gpu, field, vramguard: mine, ...theirs, ok });
    if (!ok) mismatches.push(`${gpu}.${field} (vramguard ${mine}, ${Object.entries(theirs).map(([k, v]) => `${k} ${v}`).join(', ')})`);
  };
  compare('system', 'driverVersion', system.driverVersion, refs(smi[0]?.driver_version, py?.driverVersion));
  // nvidia-smi has no query field for the CUDA version.
  if (py) compare('system', 'cudaDriverVersion', system.cudaDriverVersion, { pynvml: cudaText(py.cudaDriverVersion) });
  compare('system', 'deviceCount', snapshot.devices.length, refs(smi.length, py?.devices.length));
  snapshot.devices.forEach((d, i) => {
    const s = smi[i] ?? {};
    const p = py?.devices[i] ?? {};
    compare(i, 'uuid', d.uuid, refs(s.uuid, p.uuid));
    compare(i, 'name', d.name, refs(s.name, p.name));
    compare(i, 'pciBusId', d.pciBusId?.toUpperCase(), refs(s['pci.bus_id']?.toUpperCase(), p.pciBusId?.toUpperCase()));
    compare(i, 'memoryTotalMiB', per(d.memoryTotalBytes, MiB), refs(s['memory.total'], per(p.memoryTotalBytes, MiB)), 1);
    compare(i, 'memoryUsedMiB', per(d.memoryUsedBytes, MiB), refs(s['memory.used'], per(p.memoryUsedBytes, MiB)), 64);
    compare(i, 'memoryReservedMiB', per(d.memoryReservedBytes, MiB), refs(s['memory.reserved'], per(p.memoryReservedBytes, MiB)), 1);
    compare(i, 'temperatureC', d.temperatureCelsius, refs(s['temperature.gpu'], p.temperatureCelsius), 3);
    compare(i, 'powerLimitW', d.powerLimitWatts, refs(s['enforced.power.limit'], per(p.powerLimitMilliwatts, 1000)), 1);
    compare(i, 'powerUsageW', d.powerUsageWatts, refs(s['power.draw'], per(p.powerUsageMilliwatts, 1000)), 30);
    compare(i, 'smClockMHz', per(d.smClockHertz, 1e6), refs(s['clocks.sm'], p.smClockMhz), 200);
    compare(i, 'memoryClockMHz', per(d.memoryClockHertz, 1e6), refs(s['clocks.mem'], p.memoryClockMhz), 10);
  });
  const note = mismatches.length ? `mismatched: ${mismatches.join('; ')}` : `${rows.length} comparisons agree`;
  const how = dryRun ? ' (dry run: nvidia-smi and pynvml played by stand-ins answering from the scenario)' : py ? '' : ' (nvidia-smi only: no nvidia-ml-py for python3 here)';
  return { ok: mismatches.length === 0, note: note + how, data: { system, rows } };
});

// ---- 2. A torch process holding a known number of bytes appears with its pid -----------------------
await torchCheck('a torch process holding 2 GiB appears with its pid', async () => {
  const bytes = 2 * GiB;
  const before = pidsOnGpu0();
  const child = await startHolder(bytes);
  let seen;
  try {
    seen = await waitForHolder(child, bytes, before);
    const smi = references.computeApps().find(([pid]) => pid === seen.nvmlPid) ?? null;
    const listed = references.pynvml?.(1).devices[0].processes;
    const py = listed?.find((p) => p.pid === seen.nvmlPid) ?? null;
    const overhead = seen.usedBytes - bytes;
    const agrees = smi !== null && Math.abs(smi[1] - seen.usedBytes / MiB) <= 2 && (listed === undefined || py?.usedBytes === seen.usedBytes);
    const pidNote = seen.hostPid ? `, listed as pid ${seen.nvmlPid} (NVML reports host pids: a container)` : '';
    return {
      ok: overhead >= 0 && overhead < 2 * GiB && agrees,
      note: `pid ${child.pid}${pidNote}: ${seen.usedBytes} bytes (${(overhead / MiB).toFixed(0)} MiB over the tensor), nvidia-smi ${smi?.[1] ?? 'none'} MiB, pynvml ${listed === undefined ? 'not installed' : `${py?.usedBytes ?? 'none'} bytes`}` + (dryRun ? ' (dry run: a node child on the mock)' : ''),
      data: { pid: child.pid, nvmlPid: seen.nvmlPid, hostPid: seen.hostPid, usedBytes: seen.usedBytes, nvidiaSmiMiB: smi?.[1] ?? null, pynvmlBytes: py?.usedBytes ?? null },
    };
  } finally {
    await stopHolder(child, seen?.nvmlPid);
  }
});

// ---- 2b. A busy torch process's utilization: the driver's samples, taken as vramguard validates them --
await torchCheck("a busy torch process shows its SM utilization (vramguard vs pynvml)", async () => {
  const bytes = 256 * MiB;
  const before = pidsOnGpu0();
  const child = await startHolder(bytes, { busy: true });
  const sampler = new vg.Sampler({ interval: '100ms' }).start();
  let seen;
  try {
    seen = await waitForHolder(child, bytes, before);
    // Five seconds of passes (one in a dry run): the highest SM share vramguard gave the pid, and what
    // it rejected.
    let maxSm = 0;
    let maxGpu = 0;
    let freshPasses = 0;
    let passes = 0;
    let last;
    const until = Date.now() + (dryRun ? 1000 : 5000);
    while (Date.now() < until) {
      last = (await sampler.next()).devices[0];
      passes += 1;
      if (last.processUtilizationFresh) freshPasses += 1;
      maxGpu = Math.max(maxGpu, last.gpuUtilizationRatio ?? 0);
      const p = last.processes?.find((x) => x.pid === seen.nvmlPid);
      maxSm = Math.max(maxSm, p?.smUtilizationRatio ?? 0);
    }
    const py = references.processUtilization?.(seen.nvmlPid) ?? { error: 'not installed' };
    return {
      ok: maxSm > 0,
      note: `vramguard: SM ${(maxSm * 100).toFixed(0)} % at most over ${passes} passes (${freshPasses} with fresh samples), GPU ${(maxGpu * 100).toFixed(0)} %, ` +
        `${last?.utilizationSamplesRejectedTotal ?? 'n/a'} samples rejected in all; pynvml: ${py.error ?? `SM ${py.smPercent} % (${py.samples} samples)`}`,
      data: { pid: seen.nvmlPid, maxSmRatio: maxSm, maxGpuRatio: maxGpu, passes, freshPasses, rejectedTotal: last?.utilizationSamplesRejectedTotal ?? null, pynvml: py },
    };
  } finally {
    sampler.close();
    await stopHolder(child, seen?.nvmlPid);
  }
});

// ---- 3. A guard evicting a torch-backed worker ----------------------------------------------------
await torchCheck('a guard evicts a torch-backed worker to admit another', async () => {
  const bytes = 2 * GiB;
  const before = pidsOnGpu0();
  const worker = await startHolder(bytes);
  const guard = new vg.VramGuard({ device: 0, quota: { soft: 3 * GiB, hard: 4 * GiB }, scope: 'process-tree', interval: '50ms' });
  let seen;
  try {
    seen = await waitForHolder(worker, bytes, before);
    const exited = new Promise((r) => worker.once('exit', r));
    const evicted = [];
    guard.on('evict', (e) => evicted.push(e));
    guard.sessions.register('torch-worker', { bytes: bytes + 600 * MiB, dispose: async () => { worker.kill('SIGTERM'); await exited; }, priority: 0 });
    const started = Date.now();
    const reservation = await guard.admit(bytes + 600 * MiB, { id: 'second-model' });
    const admittedMs = Date.now() - started;
    reservation.cancel();
    const gone = await poll('the worker leaving NVML\'s list', () => !pidsOnGpu0().has(seen.nvmlPid), 10_000).catch(() => false);
    return {
      ok: evicted.length > 0 && gone,
      note: `evicted ${evicted.length}, admitted after ${admittedMs} ms; the worker's pid ${gone ? 'had left' : 'was still in'} NVML's list` + (seen.hostPid ? ' (host pids: the guard saw the worker only by device scope)' : ''),
      data: { evicted: evicted.map((e) => e.id ?? e.session ?? e), admittedMs, hostPid: seen.hostPid },
    };
  } finally {
    await guard.close();
    await stopHolder(worker, seen?.nvmlPid);
  }
});

// ---- 4. Timings side by side: vramguard's pass, pynvml's pass, an nvidia-smi spawn ----------------
await check('timing: vramguard vs pynvml vs nvidia-smi', async () => {
  const sampler = new vg.Sampler({ interval: '10ms' }).start();
  const passes = [];
  const jsReads = [];
  try {
    while (passes.length < 200) {
      const s = await sampler.next();
      passes.push(s.passDurationMs);
      const t = process.hrtime.bigint();
      sampler.latest();
      jsReads.push(Number(process.hrtime.bigint() - t) / 1e6);
    }
  } finally {
    sampler.close();
  }
  const data = { vramguardPassMs: median(passes), vramguardLatestMs: median(jsReads) };
  // The same NVML calls from a plain C loop (bench/raw_nvml_loop.c), paced like the sampler.
  if (has('gcc')) {
    const binary = join(out, 'raw_nvml_loop');
    execFileSync('gcc', ['-O2', '-std=c11', '-pthread', `-I${join(root, 'native')}`, join(root, 'bench', 'raw_nvml_loop.c'), '-o', binary, '-ldl']);
    const raw = JSON.parse(execFileSync(binary, ['--passes', '200', '--interval-ms', '10'], { encoding: 'utf8', timeout: 60_000 }));
    data.rawLoopPassMs = raw.medianNs / 1e6;
    data.passRatio = data.vramguardPassMs / data.rawLoopPassMs;
  }
  if (!dryRun) {
    if (references.pynvml) data.pynvmlPassMs = references.pynvml(200).passMedianSeconds * 1000;
    const spawns = [];
    for (let i = 0; i < 5; ++i) {
      const t = Date.now();
      execFileSync('nvidia-smi', ['--query-gpu=memory.used', '--format=csv,noheader']);
      spawns.push(Date.now() - t);
    }
    data.nvidiaSmiSpawnMs = median(spawns);
  }
  return { note: Object.entries(data).map(([k, v]) => `${k} ${v.toFixed(3)}`).join(', ') + (dryRun ? ' (dry run: the mock; pynvml and nvidia-smi skipped)' : ''), data };
});

// ---- 4b. The CLI as users run it: info --json, and a Prometheus scrape of serve -------------------
await check('CLI: info --json and a serve scrape against nvidia-smi', async () => {
  const cliMain = join(packageDir, 'dist', 'cjs', 'cli', 'main.js');
  const info = JSON.parse(execFileSync(process.execPath, [cliMain, 'info', '--json'], { encoding: 'utf8', timeout: 30_000 }));
  const smi = references.gpus();
  const problems = [];
  const library = vg.nvml.probe();
  if (info.is_mock !== library.isMock) problems.push(`info says is_mock ${info.is_mock}, the library's probe ${library.isMock}`);
  if (info.driver_version !== smi[0]?.driver_version) problems.push(`info driver ${info.driver_version}, nvidia-smi ${smi[0]?.driver_version}`);
  info.devices.forEach((d, i) => {
    if (d.uuid !== smi[i]?.uuid) problems.push(`GPU ${i} uuid ${d.uuid}, nvidia-smi ${smi[i]?.uuid}`);
    if (Math.abs(d.memory_total_bytes / MiB - Number(smi[i]?.['memory.total'])) > 1) problems.push(`GPU ${i} total ${d.memory_total_bytes} bytes, nvidia-smi ${smi[i]?.['memory.total']} MiB`);
  });
  const serve = track(spawn(process.execPath, [cliMain, 'serve', '--listen', '127.0.0.1:0', '--interval', '250ms', '--processes'], { stdio: ['ignore', 'ignore', 'pipe'] }));
  let stderr = '';
  serve.stderr.on('data', (chunk) => (stderr += chunk));
  try {
    const port = await poll('serve to listen', () => /listening on http:\/\/127\.0\.0\.1:(\d+)\/metrics/.exec(stderr)?.[1], 15_000);
    const started = performance.now();
    const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    const scrapeMs = performance.now() - started;
    const health = (await fetch(`http://127.0.0.1:${port}/health`)).status;
    const total = /^vramguard_gpu_memory_total_bytes\{[^}]*gpu="0"[^}]*\} (\S+)$/m.exec(metrics)?.[1];
    if (health !== 200) problems.push(`/health answered ${health}`);
    if (total === undefined) problems.push('no vramguard_gpu_memory_total_bytes for gpu 0 in the scrape');
    else if (Math.abs(Number(total) / MiB - Number(smi[0]?.['memory.total'])) > 1) problems.push(`scraped total ${total} bytes, nvidia-smi ${smi[0]?.['memory.total']} MiB`);
    const series = metrics.split('\n').filter((line) => line.startsWith('vramguard_')).length;
    return {
      ok: problems.length === 0,
      note: problems.length ? problems.join('; ') : `info agrees with nvidia-smi; serve: /health 200, ${series} series, scrape ${scrapeMs.toFixed(1)} ms`,
      data: { infoDevices: info.devices.length, series, scrapeMs, health },
    };
  } finally {
    const exited = new Promise((resolve) => serve.once('exit', resolve));
    serve.kill('SIGTERM');
    const timer = setTimeout(() => serve.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
  }
});

// ---- 5. Our struct sizes and offsets against the machine's nvml.h --------------------------------
// VRAMGUARD_CHECK_NVML_H names the header to compare with (the dry-run test points it at one of ours);
// else the CUDA toolkit's and the system's, then the one NVIDIA's Python wheels may carry
// (site-packages/nvidia/<part>/include/nvml.h).
function nvmlHeaders() {
  if (process.env.VRAMGUARD_CHECK_NVML_H) return [process.env.VRAMGUARD_CHECK_NVML_H];
  const dirs = ['/usr/include', ...readdirSync('/usr/local').filter((d) => d.startsWith('cuda')).map((d) => `/usr/local/${d}/include`)];
  const wheels = spawnSync('python3', ['-c', 'import nvidia; print("\\n".join(nvidia.__path__))'], { encoding: 'utf8' });
  for (const base of wheels.status === 0 ? wheels.stdout.trim().split('\n').filter(Boolean) : []) {
    for (const part of existsSync(base) ? readdirSync(base) : []) dirs.push(join(base, part, 'include'));
  }
  return dirs.map((d) => join(d, 'nvml.h')).filter((f) => existsSync(f));
}
const headers = nvmlHeaders();
if (headers.length === 0 || !has('gcc')) {
  skip('struct sizes and offsets vs nvml.h', headers.length === 0 ? 'no nvml.h on this machine' : 'no gcc');
} else {
  await check('struct sizes and offsets vs nvml.h', () => {
    const layout = (include, prefix) => `#include <stdio.h>\n#include <stddef.h>\n${include}\nint main(void){\n` +
      [['nvmlMemory_t', 'used'], ['nvmlMemory_v2_t', 'used'], ['nvmlPciInfo_t', 'busId'], ['nvmlProcessInfo_v1_t', 'usedGpuMemory'],
        ['nvmlProcessInfo_v2_t', 'computeInstanceId'], ['nvmlProcessUtilizationSample_t', 'decUtil'], ['nvmlProcessDetail_v1_t', 'usedGpuCcProtectedMemory'],
        ['nvmlProcessDetailList_v1_t', 'procArray'], ['nvmlProcessUtilizationInfo_v1_t', 'ofaUtil'], ['nvmlProcessesUtilizationInfo_v1_t', 'procUtilArray'],
        ['nvmlBAR1Memory_t', 'bar1Used'], ['nvmlEventData_t', 'computeInstanceId']]
        .map(([t, f]) => `printf("${t} %zu %zu\\n", sizeof(${t}), offsetof(${t}, ${f}));`).join('\n') + `\nprintf("versions %u %u %u\\n", (unsigned)${prefix}nvmlMemory_v2, (unsigned)${prefix}nvmlProcessDetailList_v1, (unsigned)${prefix}nvmlProcessesUtilizationInfo_v1);return 0;}\n`;
    const build = (name, source, includeDir) => {
      writeFileSync(join(out, `${name}.c`), source);
      execFileSync('gcc', ['-std=c11', `-I${includeDir}`, join(out, `${name}.c`), '-o', join(out, name)]);
      return execFileSync(join(out, name), { encoding: 'utf8' });
    };
    const official = build('layout-official', layout('#include <nvml.h>', ''), dirname(headers[0]));
    const ours = build('layout-ours', layout('#include "nvml_api.h"', ''), join(root, 'native'));
    return { ok: official === ours, note: official === ours ? `identical to ${headers[0]}` : 'differ (see data)', data: { header: headers[0], official, ours } };
  });
}

if (mock) mock.cleanup();
console.log(writeResults());
console.log(`\nwritten: ${join(out, 'gpu-check.json')}, ${join(out, 'gpu-check.md')}`);
process.exit(results.checks.some((c) => c.status === 'fail') ? 1 : 0);
