// The check to run on a GPU machine (see ../shared/gpu/README.md): in one call of a few minutes it
// compares every field vramguard reads with nvidia-smi and NVIDIA's Python binding, starts a PyTorch
// process holding a known number of bytes and waits for its pid to appear, has a guard evict a
// torch-backed worker, times vramguard, pynvml and an nvidia-smi spawn side by side, and compares our
// struct sizes and offsets with the machine's nvml.h. Results: $OUT/gpu-check.json and gpu-check.md.
//
//   bash .gpu/run.sh node bench/gpu/check.mjs            (on the GPU machine)
//   node bench/gpu/check.mjs --dry-run                   (here: on the mock; what needs a GPU is skipped)
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

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
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const results = { dryRun, date: new Date().toISOString(), package: packageDir, checks: [] };
const skip = (name, why) => results.checks.push({ name, status: 'skipped', note: why });

async function check(name, fn) {
  const started = Date.now();
  try {
    const { ok = true, note = '', data } = (await fn()) ?? {};
    results.checks.push({ name, status: ok ? 'ok' : 'fail', note, data, seconds: (Date.now() - started) / 1000 });
  } catch (error) {
    results.checks.push({ name, status: 'fail', note: String(error?.stack ?? error), seconds: (Date.now() - started) / 1000 });
  }
}

let mock;
if (dryRun) {
  mock = testing.createMockNvml({
    devices: [testing.mockDevice(0, 141, { name: 'NVIDIA H200', processes: [] })],
  });
  mock.activate();
}

function smiQuery(fields) {
  const text = execFileSync('nvidia-smi', [`--query-gpu=${fields.join(',')}`, '--format=csv,noheader,nounits'], { encoding: 'utf8' });
  return text.trim().split('\n').map((line) => Object.fromEntries(line.split(', ').map((v, i) => [fields[i], v.trim()])));
}

function pynvmlRead(passes = 200) {
  return JSON.parse(execFileSync('python3', [join(here, 'pynvml_read.py'), String(passes)], { encoding: 'utf8' }));
}

// ---- 1. Every field against nvidia-smi and pynvml, read in the same run ---------------------------
const MiB = 2 ** 20;
const near = (a, b, tolerance) => a !== null && b !== null && Math.abs(Number(a) - Number(b)) <= tolerance;
await check('fields: vramguard vs nvidia-smi vs pynvml', () => {
  const { system, snapshot } = vg.nvml.readOnce();
  const ours = snapshot.devices;
  if (dryRun) return { note: 'dry run: vramguard read the mock; nvidia-smi and pynvml need the GPU machine', data: { system, devices: ours.length } };
  const fields = ['index', 'uuid', 'name', 'pci.bus_id', 'memory.total', 'memory.used', 'memory.free', 'memory.reserved',
    'utilization.gpu', 'utilization.memory', 'temperature.gpu', 'power.draw', 'enforced.power.limit', 'clocks.sm', 'clocks.mem'];
  const smi = smiQuery(fields);
  const py = pynvmlRead(5);
  const rows = [];
  const mismatches = [];
  ours.forEach((d, i) => {
    const s = smi[i];
    const p = py.devices[i];
    const compare = (field, mine, theirs, pyValue, tolerance = 0) => {
      const okSmi = tolerance === 0 ? String(mine) === String(theirs) : near(mine, theirs, tolerance);
      const okPy = pyValue === undefined || (tolerance === 0 ? String(mine) === String(pyValue) : near(mine, pyValue, tolerance));
      rows.push({ gpu: i, field, vramguard: mine, nvidiaSmi: theirs, pynvml: pyValue, ok: okSmi && okPy });
      if (!(okSmi && okPy)) mismatches.push(`${i}.${field}`);
    };
    compare('uuid', d.uuid, s.uuid, p.uuid);
    compare('name', d.name, s.name, p.name);
    compare('pciBusId', d.pciBusId?.toUpperCase(), s['pci.bus_id'].toUpperCase(), p.pciBusId?.toUpperCase());
    compare('memoryTotalMiB', Math.round(d.memoryTotalBytes / MiB), s['memory.total'], Math.round(p.memoryTotalBytes / MiB), 1);
    compare('memoryUsedMiB', Math.round(d.memoryUsedBytes / MiB), s['memory.used'], Math.round(p.memoryUsedBytes / MiB), 64);
    compare('memoryReservedMiB', Math.round((d.memoryReservedBytes ?? 0) / MiB), s['memory.reserved'], Math.round((p.memoryReservedBytes ?? 0) / MiB), 1);
    compare('temperatureC', d.temperatureCelsius, s['temperature.gpu'], p.temperatureCelsius, 3);
    compare('powerLimitW', d.powerLimitWatts, s['enforced.power.limit'], p.powerLimitMilliwatts / 1000, 1);
    compare('powerUsageW', d.powerUsageWatts, s['power.draw'], undefined, 30);
    compare('smClockMHz', d.smClockHertz / 1e6, s['clocks.sm'], p.smClockMhz, 200);
    compare('memoryClockMHz', d.memoryClockHertz / 1e6, s['clocks.mem'], p.memoryClockMhz, 10);
  });
  return { ok: mismatches.length === 0, note: mismatches.length ? `mismatched: ${mismatches.join(', ')}` : `${rows.length} comparisons agree`, data: { system, rows } };
});

// ---- 2. A torch process holding a known number of bytes appears with its pid -----------------------
async function startHolder(bytes) {
  if (dryRun) {
    const child = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
    mock.control.setProcess(0, { pid: child.pid, usedBytes: bytes + 500 * MiB, followPid: true });
    return child;
  }
  const code = `import torch,os,time; x=torch.empty(${bytes}, dtype=torch.uint8, device='cuda'); torch.cuda.synchronize(); print(os.getpid(), flush=True); time.sleep(120)`;
  const child = spawn('python3', ['-c', code], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise((resolve, reject) => {
    child.stdout.once('data', resolve);
    child.once('exit', (c) => reject(new Error(`torch process exited (${c}) before allocating`)));
  });
  return child;
}

async function waitForPid(pid, predicate, timeoutMs = 30_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const p = vg.nvml.readOnce().snapshot.devices[0].processes?.find((x) => x.pid === pid);
    if (predicate(p)) return p;
    if (Date.now() > deadline) throw new Error(`pid ${pid}: condition not met within ${timeoutMs} ms (last: ${JSON.stringify(p)})`);
    await sleep(200);
  }
}

await check('a torch process holding 2 GiB appears with its pid', async () => {
  const bytes = 2 * GiB;
  const child = await startHolder(bytes);
  try {
    const seen = await waitForPid(child.pid, (p) => p && p.usedBytes >= bytes);
    let smi = null;
    if (!dryRun) {
      const apps = execFileSync('nvidia-smi', ['--query-compute-apps=pid,used_memory', '--format=csv,noheader,nounits'], { encoding: 'utf8' });
      smi = apps.trim().split('\n').map((l) => l.split(', ').map(Number)).find(([pid]) => pid === child.pid) ?? null;
    }
    const overhead = seen.usedBytes - bytes;
    const agrees = smi === null || Math.abs(smi[1] - seen.usedBytes / MiB) <= 2;
    return { ok: overhead < 2 * GiB && agrees, note: `${seen.usedBytes} bytes (${(overhead / MiB).toFixed(0)} MiB over the tensor)` + (smi ? `, nvidia-smi ${smi[1]} MiB` : dryRun ? ' (dry run: a node child on the mock)' : ''), data: { pid: child.pid, usedBytes: seen.usedBytes, nvidiaSmiMiB: smi?.[1] ?? null } };
  } finally {
    child.kill('SIGKILL');
  }
});

// ---- 3. A guard evicting a torch-backed worker ----------------------------------------------------
await check('a guard evicts a torch-backed worker to admit another', async () => {
  const bytes = 2 * GiB;
  const worker = await startHolder(bytes);
  const guard = new vg.VramGuard({ device: 0, quota: { soft: 3 * GiB, hard: 4 * GiB }, scope: 'process-tree', interval: '50ms' });
  try {
    await waitForPid(worker.pid, (p) => p && p.usedBytes >= bytes);
    const exited = new Promise((r) => worker.once('exit', r));
    const evicted = [];
    guard.on('evict', (e) => evicted.push(e));
    guard.sessions.register('torch-worker', { bytes: bytes + 600 * MiB, dispose: async () => { worker.kill('SIGTERM'); await exited; }, priority: 0 });
    const reservation = await guard.admit(bytes + 600 * MiB, { id: 'second-model' });
    reservation.cancel();
    await waitForPid(worker.pid, (p) => p === undefined);
    return { ok: evicted.length > 0, note: `evicted ${evicted.length}; the worker's pid left NVML's list`, data: { evicted: evicted.map((e) => e.id ?? e.session ?? e) } };
  } finally {
    worker.kill('SIGKILL');
    await guard.close();
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
  if (!dryRun) {
    data.pynvmlPassMs = pynvmlRead(200).passMedianSeconds * 1000;
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

// ---- 5. Our struct sizes and offsets against the machine's nvml.h --------------------------------
// VRAMGUARD_CHECK_NVML_H names the header to compare with (the dry-run test points it at one of ours).
const headers = (process.env.VRAMGUARD_CHECK_NVML_H ? [process.env.VRAMGUARD_CHECK_NVML_H] :
  ['/usr/include', ...readdirSync('/usr/local').filter((d) => d.startsWith('cuda')).map((d) => `/usr/local/${d}/include`)]
    .map((d) => join(d, 'nvml.h'))).filter((f) => existsSync(f));
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
writeFileSync(join(out, 'gpu-check.json'), `${JSON.stringify(results, null, 2)}\n`);
const md = [`# vramguard GPU check (${results.date}${dryRun ? ', dry run on the mock' : ''})`, '', '| Check | Result | Note |', '| --- | --- | --- |',
  ...results.checks.map((c) => `| ${c.name} | ${c.status} | ${String(c.note).split('\n')[0].replace(/\|/g, '\\|')} |`)].join('\n');
writeFileSync(join(out, 'gpu-check.md'), `${md}\n`);
console.log(md);
console.log(`\nwritten: ${join(out, 'gpu-check.json')}, ${join(out, 'gpu-check.md')}`);
process.exit(results.checks.some((c) => c.status === 'fail') ? 1 : 0);
