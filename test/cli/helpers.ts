// Helpers for the CLI tests: they run the real, built CLI (dist/cjs/cli/main.js, built by `pretest`)
// in child processes against the bundled mock NVML, with scenarios written to temporary folders.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { appendFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { mockDevice, type MockOp, type MockScenario } from '../../src/testing';

export { mockDevice };
export const root = join(__dirname, '..', '..');
export const CLI = join(root, 'dist', 'cjs', 'cli', 'main.js');
export const GiB = 2 ** 30;
export const MiB = 2 ** 20;

/** Generous: the CI machine has two cores, runs test files in parallel and may be busy with other work. */
export const WAIT_MS = 60_000;

/** The environment of a CLI child: ours, less anything that would point vramguard elsewhere. */
export function cliEnv(extra: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const key of Object.keys(env)) {
    if (key.startsWith('VRAMGUARD_') && key !== 'VRAMGUARD_BINDING') delete env[key];
  }
  delete env.NO_COLOR;
  delete env.FORCE_COLOR;
  for (const [key, value] of Object.entries(extra)) {
    if (value === undefined) delete env[key];
    else env[key] = value;
  }
  return env;
}

/** A temporary folder with scenario files; `control(name)` appends live ops for the mock. */
export class ScenarioDir {
  readonly dir = mkdtempSync(join(tmpdir(), 'vramguard-cli-'));

  write(name: string, scenario: MockScenario | string): string {
    const path = join(this.dir, name);
    writeFileSync(path, typeof scenario === 'string' ? scenario : `${JSON.stringify(scenario, null, 2)}\n`);
    return path;
  }

  /** Appends ops to `<scenario>.control`, the file `--mock` makes the mock follow. */
  control(scenarioPath: string, ...ops: MockOp[]): void {
    appendFileSync(`${scenarioPath}.control`, ops.map((op) => `${JSON.stringify(op)}\n`).join(''));
  }

  path(name: string): string {
    return join(this.dir, name);
  }

  cleanup(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Runs the CLI to completion. */
export function runCli(args: string[], options: { env?: Record<string, string | undefined>; timeoutMs?: number } = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { env: cliEnv(options.env), stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`vramguard ${args.join(' ')} did not finish within ${options.timeoutMs ?? WAIT_MS} ms; stderr: ${stderr}`));
    }, options.timeoutMs ?? WAIT_MS);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

/** A long-running CLI (watch, sample, serve) with its output collected as it comes. */
export class CliProcess {
  readonly child: ChildProcess;
  stdout = '';
  stderr = '';
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;

  constructor(args: string[], env: Record<string, string | undefined> = {}) {
    this.child = spawn(process.execPath, [CLI, ...args], { env: cliEnv(env), stdio: ['ignore', 'pipe', 'pipe'] });
    this.child.stdout!.setEncoding('utf8').on('data', (d: string) => (this.stdout += d));
    this.child.stderr!.setEncoding('utf8').on('data', (d: string) => (this.stderr += d));
    this.exited = new Promise((resolve) => this.child.on('close', (code, signal) => resolve({ code, signal })));
  }

  /** Waits until `predicate` holds (checked on every output chunk and every 50 ms). */
  async until(predicate: () => boolean, what: string, timeoutMs = WAIT_MS): Promise<void> {
    await until(predicate, `${what} (stderr: ${this.stderr.trim() || 'empty'})`, timeoutMs, () => this.child.exitCode !== null);
  }

  /** Sends a signal and waits for the exit. */
  async stop(signal: NodeJS.Signals = 'SIGINT'): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    this.child.kill(signal);
    return withTimeout(this.exited, WAIT_MS, `exit after ${signal}`);
  }

  kill(): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
  }
}

export async function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** Polls `predicate` until it holds; fails with `what` after `timeoutMs` or once `gaveUp()` says so. */
export async function until(predicate: () => boolean, what: string, timeoutMs = WAIT_MS, gaveUp: () => boolean = () => false): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (predicate()) return;
    if (gaveUp()) {
      if (predicate()) return;
      throw new Error(`gave up waiting for ${what}: the process exited`);
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Like until(), for an async check. */
export async function eventually<T>(check: () => Promise<T | undefined>, what: string, timeoutMs = WAIT_MS): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined) return value;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? ` (last error: ${String(last)})` : ''}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** Two H100s with processes, every reading set; `extra` replaces devices or adds keys. */
export function twoGpus(extra: Partial<MockScenario> = {}): MockScenario {
  return {
    driverVersion: '550.54.15',
    nvmlVersion: '12.550.54.15',
    cudaDriverVersion: 12040,
    processUtilizationPeriodMs: 20,
    devices: [
      mockDevice(0, 80, {
        utilization: { gpuPercent: 35, memoryPercent: 12 },
        temperatureCelsius: 41,
        power: { usageMilliwatts: 123_456, limitMilliwatts: 700_000 },
        clocks: { smMhz: 1980, memoryMhz: 2619 },
        processes: [
          { pid: 1_999_001, usedBytes: 4 * GiB, type: 'compute', smUtilPercent: 30, memUtilPercent: 10 },
          { pid: 1_999_002, usedBytes: 2 * GiB, type: 'compute+graphics', smUtilPercent: 5, memUtilPercent: 1 },
        ],
      }),
      mockDevice(1, 80, {
        utilization: { gpuPercent: 90, memoryPercent: 40 },
        processes: [{ pid: 1_999_003, usedBytes: 8 * GiB, type: 'compute', smUtilPercent: 88 }],
      }),
    ],
    ...extra,
  };
}

/** `promtool` (Debian package prometheus; .ci/run installs it): a clear failure when it is missing. */
export function promtoolPath(): string {
  for (const dir of (process.env.PATH ?? '').split(':')) {
    if (dir && existsSync(join(dir, 'promtool'))) return join(dir, 'promtool');
  }
  throw new Error('promtool is not installed: `apt-get install prometheus` (Debian) puts it on PATH; .ci/run installs it');
}

/** `tmux` (Debian package tmux; .ci/run installs it when missing). */
export function tmuxPath(): string {
  for (const dir of (process.env.PATH ?? '').split(':')) {
    if (dir && existsSync(join(dir, 'tmux'))) return join(dir, 'tmux');
  }
  throw new Error('tmux is not installed: `apt-get install tmux` (Debian); .ci/run installs it');
}

/** Reads a pid's command line the way `watch` shows it. */
export function commandLineOf(pid: number): string {
  return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0+$/, '').replace(/\0/g, ' ');
}

export function run(command: string, args: string[]): string {
  return execFileSync(command, args, { encoding: 'utf8' });
}
