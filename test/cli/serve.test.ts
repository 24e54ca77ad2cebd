// `vramguard serve`: scraped over HTTP, the exposition parsed back and checked by promtool, OpenMetrics
// on request, /health, failure counters and lost GPUs, per-process series only with --processes, and
// scrapes that never call NVML (the mock counts calls per thread).
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';

import { type Family, parseExposition, samples, valueOf } from './exposition';
import { CliProcess, eventually, GiB, mockDevice, promtoolPath, ScenarioDir, twoGpus } from './helpers';

// Each test starts real CLI processes and waits for conditions (never fixed sleeps): generous limits for
// a loaded two-core machine.
vi.setConfig({ testTimeout: 300_000, hookTimeout: 120_000 });

let dir: ScenarioDir;
beforeAll(() => {
  dir = new ScenarioDir();
});
afterAll(() => dir.cleanup());

/** Starts `serve` on a free port; resolves once it says where it listens. */
async function startServe(args: string[]): Promise<{ cli: CliProcess; base: string }> {
  const cli = new CliProcess(['serve', '--listen', '127.0.0.1:0', ...args]);
  await cli.until(() => /listening on http:\/\/127\.0\.0\.1:\d+\/metrics/.test(cli.stderr), 'serve to listen');
  const port = /listening on http:\/\/127\.0\.0\.1:(\d+)\/metrics/.exec(cli.stderr)![1];
  return { cli, base: `http://127.0.0.1:${port}` };
}

async function scrape(base: string, accept?: string): Promise<{ status: number; type: string | null; body: string }> {
  const response = await fetch(`${base}/metrics`, { headers: accept ? { accept } : {} });
  return { status: response.status, type: response.headers.get('content-type'), body: await response.text() };
}

function promtool(body: string): void {
  // Exit 0 with no output: the exposition parses and passes promtool's lint (names, units, HELP, _total).
  const out = execFileSync(promtoolPath(), ['check', 'metrics'], { input: body, encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'] });
  expect(out.trim()).toBe('');
}

describe('the exposition', () => {
  let cli: CliProcess;
  let base: string;
  let scenario: string;
  beforeAll(async () => {
    scenario = dir.write('two.json', twoGpus());
    ({ cli, base } = await startServe(['--mock', scenario]));
  });
  afterAll(async () => {
    expect(await cli.stop('SIGTERM')).toEqual({ code: 0, signal: null });
  });

  it('reports every reading in base units with gpu and uuid labels', async () => {
    const r = await scrape(base);
    expect(r.status).toBe(200);
    expect(r.type).toBe('text/plain; version=0.0.4; charset=utf-8');
    const m = parseExposition(r.body);
    const gpu0 = { gpu: '0', uuid: mockDevice(0).uuid! };
    const gpu1 = { gpu: '1', uuid: mockDevice(1).uuid! };
    expect(valueOf(m, 'vramguard_gpu_memory_total_bytes', gpu0)).toBe(80 * GiB);
    expect(valueOf(m, 'vramguard_gpu_memory_used_bytes', gpu0)).toBe(6 * GiB);
    expect(valueOf(m, 'vramguard_gpu_memory_used_bytes', gpu1)).toBe(8 * GiB);
    expect(valueOf(m, 'vramguard_gpu_memory_reserved_bytes', gpu0)).toBe(512 * 2 ** 20);
    expect(valueOf(m, 'vramguard_gpu_memory_free_bytes', gpu0)).toBe(80 * GiB - 6 * GiB - 512 * 2 ** 20);
    expect(valueOf(m, 'vramguard_gpu_utilization_ratio', gpu0)).toBe(0.35);
    expect(valueOf(m, 'vramguard_gpu_utilization_ratio', gpu1)).toBe(0.9);
    expect(valueOf(m, 'vramguard_gpu_memory_utilization_ratio', gpu0)).toBe(0.12);
    expect(valueOf(m, 'vramguard_gpu_temperature_celsius', gpu0)).toBe(41);
    expect(valueOf(m, 'vramguard_gpu_power_usage_watts', gpu0)).toBe(123.456);
    expect(valueOf(m, 'vramguard_gpu_power_limit_watts', gpu0)).toBe(700);
    expect(valueOf(m, 'vramguard_gpu_sm_clock_hertz', gpu0)).toBe(1980e6);
    expect(valueOf(m, 'vramguard_gpu_memory_clock_hertz', gpu0)).toBe(2619e6);
    expect(valueOf(m, 'vramguard_gpu_processes', gpu0)).toBe(2);
    expect(valueOf(m, 'vramguard_gpu_lost', gpu1)).toBe(0);
    expect(samples(m, 'vramguard_gpu_info')).toEqual([
      {
        name: 'vramguard_gpu_info',
        labels: { ...gpu0, name: 'NVIDIA H100 80GB HBM3', pci_bus_id: '00000000:18:00.0', driver_version: '550.54.15' },
        value: 1,
      },
      {
        name: 'vramguard_gpu_info',
        labels: { ...gpu1, name: 'NVIDIA H100 80GB HBM3', pci_bus_id: '00000000:28:00.0', driver_version: '550.54.15' },
        value: 1,
      },
    ]);
    expect(valueOf(m, 'vramguard_sample_age_seconds')).toBeGreaterThanOrEqual(0);
    expect(valueOf(m, 'vramguard_sampler_interval_seconds')).toBe(1);
    expect(valueOf(m, 'vramguard_sampler_passes_total')).toBeGreaterThanOrEqual(1);
    expect(m.get('vramguard_nvml_errors_total')?.type).toBe('counter');
    expect(samples(m, 'vramguard_nvml_errors_total')).toEqual([]);
    // Per-process series only with --processes.
    expect([...m.keys()].filter((name) => name.startsWith('vramguard_process_'))).toEqual([]);
    // Conventions: snake_case, the vramguard_ prefix, lowercase label names.
    for (const family of m.values()) {
      expect(family.name).toMatch(/^vramguard_[a-z0-9_]+$/);
      for (const sample of family.samples) for (const label of Object.keys(sample.labels)) expect(label).toMatch(/^[a-z_]+$/);
    }
  });

  it('passes promtool check metrics', async () => {
    promtool((await scrape(base)).body);
  });

  it('serves OpenMetrics when the scrape asks for it', async () => {
    const r = await scrape(base, 'application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5,*/*;q=0.1');
    expect(r.type).toBe('application/openmetrics-text; version=1.0.0; charset=utf-8');
    const m = parseExposition(r.body, { openMetrics: true });
    const errors = m.get('vramguard_nvml_errors') as Family;
    expect(errors.type).toBe('counter');
    const passes = m.get('vramguard_sampler_passes') as Family;
    expect(passes.samples[0]!.name).toBe('vramguard_sampler_passes_total');
    expect(valueOf(m, 'vramguard_gpu_memory_used_bytes', { gpu: '1' })).toBe(8 * GiB);
    // ... and the plain text format is unchanged afterwards (the two formats share no metric objects).
    const text = parseExposition((await scrape(base)).body);
    expect(text.get('vramguard_sampler_passes_total')?.type).toBe('counter');
  });

  it('negotiates by q-values: q=0 refuses OpenMetrics, refusing every format is 406', async () => {
    const refused = await scrape(base, 'application/openmetrics-text;q=0,text/plain;q=0.5');
    expect(refused.type).toBe('text/plain; version=0.0.4; charset=utf-8');
    expect(parseExposition(refused.body).get('vramguard_sampler_passes_total')?.type).toBe('counter');
    expect((await scrape(base, 'application/openmetrics-text;q=0,*/*;q=0.1')).type).toMatch(/^text\/plain/);
    const none = await scrape(base, 'text/plain;q=0,*/*;q=0');
    expect(none.status).toBe(406);
    expect(none.body).toContain('offered: text/plain; version=0.0.4, application/openmetrics-text; version=1.0.0');
  });

  it('/health is 200 while samples are fresh', async () => {
    const response = await fetch(`${base}/health`);
    expect(response.status).toBe(200);
    expect(await response.text()).toMatch(/^ok: latest sample \d+\.\d{3}s old \(pass \d+\)\n$/);
  });

  it('other paths and methods', async () => {
    expect((await fetch(`${base}/nope`)).status).toBe(404);
    const post = await fetch(`${base}/metrics`, { method: 'POST' });
    expect(post.status).toBe(405);
    expect(post.headers.get('allow')).toBe('GET, HEAD');
    const head = await fetch(`${base}/metrics`, { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(await head.text()).toBe('');
    expect(await (await fetch(`${base}/`)).text()).toContain('href="metrics"');
  });

  it('scrapes never call NVML: only the sampler thread does, after start-up', async () => {
    const first = dir.path('stats-1.json');
    const second = dir.path('stats-2.json');
    type Stats = { callsByThread: Record<string, Record<string, number>> };
    const read = (path: string) => eventually(async () => {
      try {
        return JSON.parse(readFileSync(path, 'utf8')) as Stats;
      } catch {
        return undefined;
      }
    }, `the mock's stats in ${path}`);
    dir.control(scenario, { op: 'writeStats', path: first });
    const before = await read(first);
    for (let i = 0; i < 25; i++) {
      expect((await scrape(base)).status).toBe(200);
      expect((await fetch(`${base}/health`)).status).toBe(200);
    }
    dir.control(scenario, { op: 'writeStats', path: second });
    const after = await read(second);
    const others = (stats: Stats) => Object.fromEntries(Object.entries(stats.callsByThread).filter(([thread]) => thread !== 'vramguard-smpl' && thread !== 'vramguard-xid')); // our native threads
    expect(Object.keys(after.callsByThread)).toContain('vramguard-smpl');
    expect(others(after)).toEqual(others(before));
  });
});

describe('failures, lost GPUs and per-process series', () => {
  it('counts failed readings per pass, marks a lost GPU and keeps its identity', async () => {
    const scenario = dir.write('lost.json', twoGpus({ processUtilizationPeriodMs: 5 }));
    // 200 ms between passes: the exporter's JS thread sees each of them unless it is stalled that long.
    const { cli, base } = await startServe(['--mock', scenario, '--interval', '200ms']);
    try {
      const passes = (families: Map<string, Family>) => valueOf(families, 'vramguard_sampler_passes_total') ?? 0;
      const before = passes(parseExposition((await scrape(base)).body));
      dir.control(scenario, { op: 'injectError', function: 'nvmlDeviceGetTemperature', device: 0, return: 'UNKNOWN', count: 3 });
      // The mock applies the op within the next two passes, so the three failures are over six passes
      // on; a later pass reads the temperature again. The exporter counts the passes its JS thread sees:
      // one it was too busy to see is not counted, so the count is 3 when it kept up, never more.
      const errors = { gpu: '0', field: 'temperature_celsius', code: 'UNKNOWN' };
      const m = await eventually(async () => {
        const families = parseExposition((await scrape(base)).body);
        return passes(families) >= before + 6 && valueOf(families, 'vramguard_gpu_temperature_celsius', { gpu: '0' }) !== undefined
          ? families
          : undefined;
      }, 'six passes after the injection, the temperature read again');
      expect(valueOf(m, 'vramguard_gpu_temperature_celsius', { gpu: '0' })).toBe(41); // back after the injected failures
      const counted = valueOf(m, 'vramguard_nvml_errors_total', errors)!;
      expect(counted).toBeGreaterThanOrEqual(1);
      expect(counted).toBeLessThanOrEqual(3);
      // ...and no pass after the injection counts another.
      expect(valueOf(parseExposition((await scrape(base)).body), 'vramguard_nvml_errors_total', errors)).toBe(counted);

      dir.control(scenario, { op: 'loseDevice', device: 1 });
      const lost = await eventually(async () => {
        const families = parseExposition((await scrape(base)).body);
        // The gauge reads the latest pass; the counter counts passes as the JS thread takes them in, which
        // can be a moment later (the XID watcher makes the sampler read at once): wait for both.
        return valueOf(families, 'vramguard_gpu_lost', { gpu: '1' }) === 1 &&
          valueOf(families, 'vramguard_gpu_lost_events_total', { gpu: '1' }) !== undefined
          ? families
          : undefined;
      }, 'GPU 1 lost');
      const gpu1 = { gpu: '1', uuid: mockDevice(1).uuid! };
      expect(valueOf(lost, 'vramguard_gpu_lost', gpu1)).toBe(1);
      expect(valueOf(lost, 'vramguard_gpu_info', gpu1)).toBe(1);
      expect(valueOf(lost, 'vramguard_gpu_memory_used_bytes', { gpu: '1' })).toBeUndefined(); // absent, not 0
      expect(valueOf(lost, 'vramguard_gpu_memory_used_bytes', { gpu: '0' })).toBe(6 * GiB);
      expect(valueOf(lost, 'vramguard_gpu_lost_events_total', { gpu: '1' })).toBe(1);
      expect(valueOf(lost, 'vramguard_nvml_errors_total', { gpu: '1', field: 'device', code: 'GPU_IS_LOST' })).toBeGreaterThanOrEqual(1);
      promtool((await scrape(base)).body);

      dir.control(scenario, { op: 'recoverDevice', device: 1 });
      const back = await eventually(async () => {
        const families = parseExposition((await scrape(base)).body);
        return valueOf(families, 'vramguard_gpu_lost', { gpu: '1' }) === 0 ? families : undefined;
      }, 'GPU 1 back');
      expect(valueOf(back, 'vramguard_gpu_memory_used_bytes', gpu1)).toBe(8 * GiB);
      expect(valueOf(back, 'vramguard_gpu_lost_events_total', { gpu: '1' })).toBe(1);
    } finally {
      expect(await cli.stop('SIGINT')).toEqual({ code: 0, signal: null });
    }
  });

  it('--processes adds per-process series, with the command of pids that exist here', async () => {
    const me = process.pid;
    const comm = readFileSync(`/proc/${me}/comm`, 'utf8').trim();
    const scenario = dir.write(
      'procs.json',
      twoGpus({
        devices: [
          mockDevice(0, 80, {
            processes: [
              { pid: me, usedBytes: 3 * GiB, smUtilPercent: 40, memUtilPercent: 10 },
              { pid: 1_999_111, usedBytes: null, type: 'graphics' },
            ],
          }),
        ],
      }),
    );
    const { cli, base } = await startServe(['--mock', scenario, '--processes']);
    try {
      const body = await eventually(async () => {
        const text = (await scrape(base)).body;
        const families = parseExposition(text);
        return valueOf(families, 'vramguard_process_sm_utilization_ratio', { pid: String(me) }) === 0.4 ? text : undefined;
      }, 'per-process utilization');
      const m = parseExposition(body);
      const labels = { gpu: '0', uuid: mockDevice(0).uuid!, mig_uuid: '', pid: String(me), command: comm };
      expect(samples(m, 'vramguard_process_memory_used_bytes')).toEqual([{ name: 'vramguard_process_memory_used_bytes', labels, value: 3 * GiB }]);
      expect(valueOf(m, 'vramguard_process_memory_utilization_ratio', labels)).toBe(0.1);
      // A pid NVML cannot attribute memory to has no memory series (absent, not zero).
      expect(valueOf(m, 'vramguard_process_memory_used_bytes', { pid: '1999111' })).toBeUndefined();
      promtool(body);
    } finally {
      expect(await cli.stop('SIGTERM')).toEqual({ code: 0, signal: null });
    }
  });

  it('/health turns 503 once the latest sample is older than --stale-after', async () => {
    const scenario = dir.write('stale.json', twoGpus());
    const { cli, base } = await startServe(['--mock', scenario, '--interval', '30s', '--stale-after', '200ms']);
    try {
      const body = await eventually(async () => {
        const response = await fetch(`${base}/health`);
        return response.status === 503 ? response.text() : undefined;
      }, '/health to turn 503');
      expect(body).toMatch(/^stale: latest sample \d+\.\d{3}s old, more than 0\.2s \(pass 1\)\n$/);
      const m = parseExposition((await scrape(base)).body);
      expect(valueOf(m, 'vramguard_sample_age_seconds')).toBeGreaterThan(0.2);
    } finally {
      expect(await cli.stop('SIGINT')).toEqual({ code: 0, signal: null });
    }
  });
});
