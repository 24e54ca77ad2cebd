// Every error path of the CLI: one line on stderr, the documented exit code, the flag named.
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';

import { CLI, root, runCli, ScenarioDir, twoGpus } from './helpers';

// Each test starts real CLI processes and waits for conditions (never fixed sleeps): generous limits for
// a loaded two-core machine.
vi.setConfig({ testTimeout: 300_000, hookTimeout: 120_000 });

const COMMANDS = ['info', 'watch', 'sample', 'serve'] as const;
let dir: ScenarioDir;
let scenario: string;

beforeAll(() => {
  dir = new ScenarioDir();
  scenario = dir.write('two.json', twoGpus());
});
afterAll(() => dir.cleanup());

/** stderr is exactly one line, starting with the command. */
function oneLine(stderr: string, command?: string): string {
  const lines = stderr.split('\n');
  expect(lines.at(-1)).toBe('');
  expect(lines).toHaveLength(2);
  expect(lines[0]).toMatch(command ? new RegExp(`^vramguard ${command}: `) : /^vramguard: /);
  return lines[0]!;
}

describe('NVML unavailable: exit 2 and one line saying what is missing', () => {
  it.each(COMMANDS)('%s --nvml-library /nonexistent', async (command) => {
    const r = await runCli([command, '--nvml-library', '/nonexistent/libnvidia-ml.so.1']);
    expect(r.code).toBe(2);
    expect(oneLine(r.stderr, command)).toMatch(/NVML unavailable: cannot load .*\/nonexistent\/libnvidia-ml\.so\.1/);
    expect(r.stdout).toBe('');
  });

  it('the environment variable works like the flag', async () => {
    const r = await runCli(['info'], { env: { VRAMGUARD_NVML_LIBRARY: '/nonexistent/libnvidia-ml.so.1' } });
    expect(r.code).toBe(2);
    expect(oneLine(r.stderr, 'info')).toContain('/nonexistent/libnvidia-ml.so.1');
  });

  it('a GPU-less machine: NVML loads but finds no device', async () => {
    const empty = dir.write('empty.json', { driverVersion: '550.54.15', devices: [] });
    for (const command of COMMANDS) {
      const r = await runCli([command, '--mock', empty]);
      expect(r.code).toBe(2);
      expect(oneLine(r.stderr, command)).toBe(`vramguard ${command}: no GPU: NVML (driver 550.54.15) reports 0 devices`);
    }
  });

  it('an invalid mock scenario: the mock says where', async () => {
    const bad = dir.write('bad.json', '{"devices": [{"memory": {"total": "abc"}}]}\n');
    const r = await runCli(['sample', '--mock', bad]);
    expect(r.code).toBe(2);
    expect(oneLine(r.stderr, 'sample')).toContain(`scenario ${bad}: $.devices[0].memory.total: expected a non-negative integer`);
  });

  it('nvmlInit failing (injected) is NVML unavailable too', async () => {
    const failing = dir.write('init.json', twoGpus({ errors: [{ function: 'nvmlInit_v2', return: 'DRIVER_NOT_LOADED' }] }));
    const r = await runCli(['info', '--mock', failing]);
    expect(r.code).toBe(2);
    expect(oneLine(r.stderr, 'info')).toMatch(/nvmlInit_v2.*DRIVER_NOT_LOADED/);
  });
});

describe('usage errors: exit 64, the flag named', () => {
  const cases: Array<[string, string[], RegExp]> = [
    ['unknown flag', ['sample', '--bogus'], /unknown option '--bogus'/],
    ['unknown flag, with a suggestion', ['info', '--jsn'], /unknown option '--jsn'.*--json/],
    ['unknown --fields', ['sample', '--fields', 'gpu,memory_usage'], /--fields: unknown field "memory_usage" \(fields: timestamp, /],
    ['duplicate --fields', ['sample', '--fields', 'gpu,gpu'], /--fields: field "gpu" is given twice/],
    ['empty --fields', ['sample', '--fields', 'gpu,,uuid'], /--fields: empty field name/],
    ['bad --interval', ['watch', '--interval', 'soon'], /--interval: cannot read "soon" as a duration/],
    ['too small --interval', ['serve', '--interval', '1ms'], /--interval: must be at least 10ms/],
    ['bad --count', ['sample', '--count', '0'], /--count: expected a positive integer, got "0"/],
    ['bad --count', ['sample', '--count', '2.5'], /--count: expected a positive integer/],
    ['bad --format', ['sample', '--format', 'xml'], /'-f, --format <format>' argument 'xml' is invalid\. Allowed choices are ndjson, csv/],
    ['bad --listen', ['serve', '--listen', 'localhost'], /--listen: no port: "localhost"/],
    ['bad --listen port', ['serve', '--listen', '127.0.0.1:99999'], /--listen: port out of range/],
    ['bad --stale-after', ['serve', '--stale-after', 'never'], /--stale-after: cannot read "never"/],
    ['missing flag value', ['sample', '--interval'], /option '-i, --interval <duration>' argument missing/],
    ['empty --device', ['info', '--device', '0,'], /--device: empty device/],
    ['extra argument', ['info', 'extra'], /too many arguments for 'info'/],
  ];
  it.each(cases)('%s: %j', async (_name, args, message) => {
    const r = await runCli(args);
    expect(r.code).toBe(64);
    expect(oneLine(r.stderr, args[0])).toMatch(message);
    expect(r.stdout).toBe('');
  });

  it('an unknown device index or UUID (checked against NVML)', async () => {
    for (const command of COMMANDS) {
      const byIndex = await runCli([command, '--mock', scenario, '--device', '7']);
      expect(byIndex.code).toBe(64);
      expect(oneLine(byIndex.stderr, command)).toBe(`vramguard ${command}: --device: no device 7 (this machine has indexes 0-1)`);
    }
    const byUuid = await runCli(['sample', '--mock', scenario, '--device', 'GPU-does-not-exist']);
    expect(byUuid.code).toBe(64);
    expect(oneLine(byUuid.stderr, 'sample')).toMatch(/--device: no device with UUID or PCI bus id "GPU-does-not-exist"/);
  });

  it('--mock with a missing file or a folder (a bad scenario: exit 2, the path named), or with --nvml-library', async () => {
    const missing = await runCli(['info', '--mock', dir.path('nope.json')]);
    expect(missing.code).toBe(2);
    expect(oneLine(missing.stderr, 'info')).toBe(`vramguard info: scenario ${dir.path('nope.json')}: cannot read it: no such file or directory (ENOENT)`);
    const folder = await runCli(['sample', '--mock', dir.dir]);
    expect(folder.code).toBe(2);
    expect(oneLine(folder.stderr, 'sample')).toBe(`vramguard sample: scenario ${dir.dir}: cannot read it: it is a directory`);
    const both = await runCli(['info', '--mock', scenario, '--nvml-library', '/x.so']);
    expect(both.code).toBe(64);
    expect(oneLine(both.stderr, 'info')).toMatch(/--mock: cannot be combined with --nvml-library/);
  });

  it('no command, or an unknown one', async () => {
    const none = await runCli([]);
    expect(none.code).toBe(64);
    expect(oneLine(none.stderr)).toMatch(/missing command: info, watch, sample, serve/);
    const unknown = await runCli(['top']);
    expect(unknown.code).toBe(64);
    expect(oneLine(unknown.stderr)).toMatch(/unknown command 'top'/);
  });
});

describe('help and version', () => {
  it.each(COMMANDS)('%s --help names every common flag and exits 0', async (command) => {
    const r = await runCli([command, '--help']);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('');
    for (const flag of ['--device', '--nvml-library', '--mock', '--help']) expect(r.stdout).toContain(flag);
  });

  it('vramguard --help lists the commands and the exit codes', async () => {
    const r = await runCli(['--help']);
    expect(r.code).toBe(0);
    for (const command of COMMANDS) expect(r.stdout).toContain(command);
    expect(r.stdout).toMatch(/Exit codes: 0 done.*1 failure, 2 NVML unavailable/s);
  });

  it('sample --help lists the fields', async () => {
    const r = await runCli(['sample', '--help']);
    expect(r.stdout).toContain('memory_used_bytes');
    expect(r.stdout).toContain('--fields');
  });

  it('--version prints the package version', async () => {
    const r = await runCli(['--version']);
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toBe((JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string }).version);
  });

  it("package.json's bin is the CLI, a node script that ships", () => {
    const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { bin: { vramguard: string }; files: string[] };
    expect(pkg.bin).toEqual({ vramguard: 'dist/cjs/cli/main.js' });
    expect(join(root, pkg.bin.vramguard)).toBe(CLI);
    expect(readFileSync(CLI, 'utf8').split('\n')[0]).toBe('#!/usr/bin/env node');
    expect(pkg.files).toEqual(expect.arrayContaining(['dist/', 'examples/scenarios/']));
  });
});

describe('run-time failures: exit 1', () => {
  let blocker: Server;
  let port: number;
  beforeAll(async () => {
    blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    port = (blocker.address() as { port: number }).port;
  });
  afterAll(() => new Promise<void>((resolve) => blocker.close(() => resolve())));

  it('serve on a port already in use', async () => {
    const r = await runCli(['serve', '--mock', scenario, '--listen', `127.0.0.1:${port}`]);
    expect(r.code).toBe(1);
    expect(oneLine(r.stderr, 'serve')).toBe(`vramguard serve: cannot listen on 127.0.0.1:${port}: address already in use`);
  });
});
