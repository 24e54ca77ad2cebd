// `vramguard sample`: NDJSON and CSV parsed back, the schema, --fields, --count, live changes, lost
// GPUs, Ctrl-C and a closed pipe.
import { spawn } from 'node:child_process';

import { parse as parseCsv } from 'csv-parse/sync';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';

import { MIG_A, MIG_B, migGpu } from '../native/mig-scenario';
import { CLI, cliEnv, CliProcess, GiB, MiB, mockDevice, runCli, ScenarioDir, twoGpus, withTimeout, WAIT_MS } from './helpers';

// Each test starts real CLI processes and waits for conditions (never fixed sleeps): generous limits for
// a loaded two-core machine.
vi.setConfig({ testTimeout: 300_000, hookTimeout: 120_000 });

const SCHEMA = [
  'timestamp',
  'sequence',
  'gpu',
  'uuid',
  'name',
  'pci_bus_id',
  'lost',
  'lost_reason',
  'memory_total_bytes',
  'memory_used_bytes',
  'memory_free_bytes',
  'memory_reserved_bytes',
  'gpu_utilization_ratio',
  'memory_utilization_ratio',
  'temperature_celsius',
  'power_usage_watts',
  'power_limit_watts',
  'sm_clock_hertz',
  'memory_clock_hertz',
  'process_count',
  'process_memory_used_bytes',
  'mig_mode',
  'mig_pending_mode',
  'mig_instances_reason',
  'mig_index',
  'mig_uuid',
  'gpu_instance_id',
  'compute_instance_id',
];
const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

let dir: ScenarioDir;
let scenario: string;
beforeAll(() => {
  dir = new ScenarioDir();
  scenario = dir.write('two.json', twoGpus());
});
afterAll(() => dir.cleanup());

type Row = Record<string, unknown>;

function ndjson(text: string): Row[] {
  expect(text.endsWith('\n')).toBe(true);
  return text
    .slice(0, -1)
    .split('\n')
    .map((line) => JSON.parse(line) as Row);
}

describe('ndjson', () => {
  it('one record per device per pass, every field, base units', async () => {
    const r = await runCli(['sample', '--mock', scenario, '--count', '3', '--interval', '20ms']);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('');
    const rows = ndjson(r.stdout);
    expect(rows).toHaveLength(6);
    for (const row of rows) {
      expect(Object.keys(row)).toEqual(SCHEMA);
      expect(row.timestamp).toMatch(ISO);
      for (const key of Object.keys(row)) expect(key).not.toContain('.');
    }
    // Records of one pass share timestamp and sequence; passes increase.
    expect(rows.map((r) => r.gpu)).toEqual([0, 1, 0, 1, 0, 1]);
    expect(rows[0]!.sequence).toBe(rows[1]!.sequence);
    expect(rows[0]!.timestamp).toBe(rows[1]!.timestamp);
    expect(Number(rows[2]!.sequence)).toBeGreaterThan(Number(rows[0]!.sequence));
    expect(Date.parse(String(rows[4]!.timestamp))).toBeGreaterThanOrEqual(Date.parse(String(rows[0]!.timestamp)));

    expect(rows[0]).toMatchObject({
      gpu: 0,
      uuid: mockDevice(0).uuid,
      name: 'NVIDIA H100 80GB HBM3',
      pci_bus_id: '00000000:18:00.0',
      lost: false,
      lost_reason: null,
      memory_total_bytes: 80 * GiB,
      memory_used_bytes: 6 * GiB,
      memory_reserved_bytes: 512 * 2 ** 20,
      memory_free_bytes: 80 * GiB - 6 * GiB - 512 * 2 ** 20,
      gpu_utilization_ratio: 0.35,
      memory_utilization_ratio: 0.12,
      temperature_celsius: 41,
      power_usage_watts: 123.456,
      power_limit_watts: 700,
      sm_clock_hertz: 1980e6,
      memory_clock_hertz: 2619e6,
      process_count: 2,
      process_memory_used_bytes: 6 * GiB,
    });
    expect(rows[1]).toMatchObject({ gpu: 1, gpu_utilization_ratio: 0.9, process_count: 1, process_memory_used_bytes: 8 * GiB });
  });

  it('--fields picks and orders fields; absent readings are null', async () => {
    const s = dir.write('partial.json', { devices: [mockDevice(0, 24, { power: null, temperatureCelsius: null })] });
    const r = await runCli(['sample', '--mock', s, '-n', '1', '--fields', 'power_usage_watts,gpu,temperature_celsius,memory_total_bytes']);
    expect(r.code).toBe(0);
    const [row] = ndjson(r.stdout);
    expect(Object.keys(row!)).toEqual(['power_usage_watts', 'gpu', 'temperature_celsius', 'memory_total_bytes']);
    expect(row).toEqual({ power_usage_watts: null, gpu: 0, temperature_celsius: null, memory_total_bytes: 24 * GiB });
  });

  it('--device limits the records to those GPUs', async () => {
    const r = await runCli(['sample', '--mock', scenario, '-n', '2', '-i', '20ms', '--device', mockDevice(1).uuid!, '--fields', 'gpu,uuid']);
    expect(ndjson(r.stdout)).toEqual([
      { gpu: 1, uuid: mockDevice(1).uuid },
      { gpu: 1, uuid: mockDevice(1).uuid },
    ]);
  });
});

describe('MIG', () => {
  it('a record per MIG device after its GPU: its memory and processes, ids named as in info --json, board readings null', async () => {
    const mig = dir.write('mig.json', twoGpus({ unprivileged: true, devices: [mockDevice(0), migGpu(1)] }));
    const r = await runCli(['sample', '--mock', mig, '--count', '1']);
    expect(r.code).toBe(0);
    const rows = ndjson(r.stdout);
    expect(rows.map((row) => [row.gpu, row.mig_index])).toEqual([
      [0, null],
      [1, null],
      [1, 0],
      [1, 2],
    ]);
    for (const row of rows) expect(Object.keys(row)).toEqual(SCHEMA);
    expect(rows[0]).toMatchObject({ mig_mode: null, mig_pending_mode: null, mig_uuid: null, gpu_instance_id: null });
    const parent = migGpu(1).uuid;
    // The board, unprivileged: its memory and processes NO_PERMISSION (null); its MIG devices listed.
    expect(rows[1]).toMatchObject({ uuid: parent, mig_mode: 'enabled', mig_pending_mode: 'enabled', mig_instances_reason: null, memory_used_bytes: null, process_count: null });
    expect(rows[1]!.temperature_celsius).not.toBeNull();
    expect(rows[2]).toMatchObject({
      sequence: rows[1]!.sequence,
      uuid: parent,
      mig_uuid: MIG_A,
      gpu_instance_id: 1,
      compute_instance_id: 0,
      memory_total_bytes: 40 * GiB,
      memory_used_bytes: 9 * GiB + 64 * MiB,
      memory_reserved_bytes: 256 * MiB,
      process_count: 3,
      process_memory_used_bytes: 9 * GiB,
      temperature_celsius: null,
      power_usage_watts: null,
      gpu_utilization_ratio: null,
    });
    expect(rows[3]).toMatchObject({ mig_uuid: MIG_B, gpu_instance_id: 2, memory_free_bytes: 13 * GiB, process_count: 1, process_memory_used_bytes: 7 * GiB });
  });
});

describe('csv', () => {
  it('a header row, RFC 4180 quoting, empty cells for nulls; parsed back', async () => {
    const s = dir.write(
      'quoted.json',
      { devices: [mockDevice(0, 48, { name: 'Quadro "RTX", 8000', power: null }), mockDevice(1, 24, { name: 'Plain' })] },
    );
    const r = await runCli(['sample', '--mock', s, '--format', 'csv', '--count', '2', '--interval', '20ms']);
    expect(r.code).toBe(0);
    const lines = r.stdout.split('\n');
    expect(lines[0]).toBe(SCHEMA.join(','));
    expect(r.stdout).toContain('"Quadro ""RTX"", 8000"');
    const records = parseCsv(r.stdout, { columns: true, strict: true } as never) as Array<Record<string, string>>;
    expect(records).toHaveLength(4);
    expect(records[0]).toMatchObject({
      gpu: '0',
      name: 'Quadro "RTX", 8000',
      lost: 'false',
      lost_reason: '',
      power_usage_watts: '',
      memory_total_bytes: String(48 * GiB),
      process_count: '0',
    });
    expect(records[0]!.timestamp).toMatch(ISO);
    expect(records[1]).toMatchObject({ gpu: '1', name: 'Plain' });
    expect(records.map((rec) => Object.keys(rec))).toEqual(Array(4).fill(SCHEMA));
  });

  it('--fields sets the columns', async () => {
    const r = await runCli(['sample', '--mock', scenario, '-f', 'csv', '-n', '1', '--fields', 'gpu,memory_used_bytes']);
    expect(r.stdout).toBe(`gpu,memory_used_bytes\n0,${6 * GiB}\n1,${8 * GiB}\n`);
  });
});

describe('a running stream', () => {
  it('follows live changes, a lost GPU and its recovery', async () => {
    const s = dir.write('live.json', twoGpus());
    const cli = new CliProcess(['sample', '--mock', s, '--interval', '20ms', '--fields', 'gpu,lost,lost_reason,memory_used_bytes,process_count']);
    try {
      const rows = () => cli.stdout.split('\n').filter((l) => l.length > 0).map((l) => JSON.parse(l) as Row);
      await cli.until(() => rows().length >= 2, 'the first pass');
      dir.control(s, { op: 'setProcess', device: 0, pid: 1_999_009, usedBytes: 10 * GiB });
      await cli.until(() => rows().some((r) => r.gpu === 0 && r.process_count === 3 && r.memory_used_bytes === 16 * GiB), 'the new process');
      dir.control(s, { op: 'loseDevice', device: 1 });
      await cli.until(() => rows().some((r) => r.gpu === 1 && r.lost === true), 'GPU 1 lost');
      const lost = rows().find((r) => r.gpu === 1 && r.lost === true)!;
      expect(lost).toEqual({ gpu: 1, lost: true, lost_reason: 'GPU_IS_LOST', memory_used_bytes: null, process_count: null });
      dir.control(s, { op: 'recoverDevice', device: 1 });
      const lostAt = rows().indexOf(lost);
      await cli.until(() => rows().some((r, i) => i > lostAt && r.gpu === 1 && r.lost === false), 'GPU 1 back');
      // Ctrl-C: exit 0, every line complete.
      const exit = await cli.stop('SIGINT');
      expect(exit).toEqual({ code: 0, signal: null });
      expect(cli.stdout.endsWith('\n')).toBe(true);
      expect(cli.stderr).toBe('');
    } finally {
      cli.kill();
    }
  });

  it('SIGTERM exits 0', async () => {
    const cli = new CliProcess(['sample', '--mock', scenario, '-f', 'csv']);
    try {
      await cli.until(() => cli.stdout.split('\n').length >= 3, 'the header and a pass');
      expect(await cli.stop('SIGTERM')).toEqual({ code: 0, signal: null });
    } finally {
      cli.kill();
    }
  });

  it('a reader that goes away (| head -n 1) ends the stream with exit 0', async () => {
    const bash = spawn('bash', ['-c', `"${process.execPath}" "${CLI}" sample --mock "${scenario}" --interval 10ms | head -n 1; echo "status=\${PIPESTATUS[0]}"`], {
      env: cliEnv(),
    });
    let out = '';
    let err = '';
    bash.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    bash.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
    const code = await withTimeout(new Promise((resolve) => bash.on('close', resolve)), WAIT_MS, 'the pipeline');
    expect(code).toBe(0);
    const lines = out.trim().split('\n');
    expect(lines).toHaveLength(2);
    expect(JSON.parse(lines[0]!)).toMatchObject({ gpu: 0 });
    expect(lines[1]).toBe('status=0');
    expect(err).toBe('');
  });
});
