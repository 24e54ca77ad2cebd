// `vramguard watch` in a real pseudo-terminal: tmux runs it, capture-pane reads the screen as a person
// would see it, send-keys types, resize-window resizes. Without a terminal: plain lines.
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { userInfo } from 'node:os';

import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';

import { MIG_A, MIG_B, migGpu } from '../native/mig-scenario';
import { CLI, cliEnv, CliProcess, commandLineOf, GiB, mockDevice, ScenarioDir, tmuxPath, twoGpus, until } from './helpers';

// Each test starts real CLI processes and waits for conditions (never fixed sleeps): generous limits for
// a loaded two-core machine.
vi.setConfig({ testTimeout: 300_000, hookTimeout: 120_000 });

let dir: ScenarioDir;
/** Every tmux server started, closed at the end even when a test timed out before its own cleanup. */
const open = new Set<{ close(): void }>();
beforeAll(() => {
  dir = new ScenarioDir();
});
afterAll(() => {
  for (const terminal of open) terminal.close();
  dir.cleanup();
});

let sessions = 0;

/** One tmux server (own socket) running one command in a pane of the given size. */
class Terminal {
  readonly socket = `vramguard-test-${process.pid}-${++sessions}`;
  private readonly tmux = tmuxPath();
  private readonly env: NodeJS.ProcessEnv;

  constructor(
    args: string[],
    options: { width: number; height: number; env?: Record<string, string | undefined> },
  ) {
    // The pane's shell prints a marker, runs the CLI, writes its exit status to a file, prints another
    // marker and stays, so the screen the CLI leaves behind can be read.
    const script = dir.path(`${this.socket}.sh`);
    this.statusFile = dir.path(`${this.socket}.status`);
    const quoted = [process.execPath, CLI, ...args].map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
    writeFileSync(script, `printf 'BEFORE-WATCH\\n'\n${quoted}\necho $? > '${this.statusFile}'\nprintf 'AFTER-WATCH\\n'\nexec sleep 600\n`);
    const config = dir.path(`${this.socket}.conf`);
    writeFileSync(config, 'set -g status off\n');
    this.env = cliEnv({ LANG: 'C.UTF-8', LC_ALL: 'C.UTF-8', TMUX: undefined, ...options.env });
    this.run(['-f', config, 'new-session', '-d', '-x', String(options.width), '-y', String(options.height), '-s', 'watch', `sh ${script}`]);
    open.add(this);
    // Everything the program writes from here on, raw, to check how it leaves the terminal.
    this.log = dir.path(`${this.socket}.out`);
    this.run(['pipe-pane', '-o', '-t', 'watch', `cat >> '${this.log}'`]);
  }

  readonly log: string;
  readonly statusFile: string;

  /** The raw output so far (escape sequences included). */
  output(): string {
    try {
      return readFileSync(this.log, 'latin1');
    } catch {
      return '';
    }
  }

  /** The program's last words to the terminal: the cursor shown, then the alternate screen left. */
  async waitForRestore(): Promise<void> {
    await until(() => this.output().includes('\u001b[?25h\u001b[?1049l'), 'the terminal restored (show cursor, leave the alternate screen)');
    expect(this.output().split('\u001b[?1049l').at(-1)).toBe('AFTER-WATCH\r\n');
  }

  private run(args: string[]): string {
    return execFileSync(this.tmux, ['-u', '-L', this.socket, ...args], { env: this.env, encoding: 'utf8' });
  }

  /** The screen as text, one string per row (trailing blanks trimmed by tmux). */
  screen(): string {
    return this.run(['capture-pane', '-p', '-t', 'watch']);
  }

  /** The screen with its colours and attributes, as escape sequences. */
  screenWithEscapes(): string {
    return this.run(['capture-pane', '-p', '-e', '-t', 'watch']);
  }

  keys(...keys: string[]): void {
    this.run(['send-keys', '-t', 'watch', ...keys]);
  }

  resize(width: number, height: number): void {
    this.run(['resize-window', '-t', 'watch', '-x', String(width), '-y', String(height)]);
  }

  pane(): { alternate: boolean; cursorVisible: boolean; pid: number } {
    const [alternate, cursor, pid] = this.run(['display-message', '-p', '-t', 'watch', '#{alternate_on}|#{cursor_flag}|#{pane_pid}'])
      .trim()
      .split('|');
    return { alternate: alternate === '1', cursorVisible: cursor === '1', pid: Number(pid) };
  }

  /** The CLI's pid: the child of the pane's shell. */
  cliPid(): number {
    const children = readFileSync(`/proc/${this.pane().pid}/task/${this.pane().pid}/children`, 'utf8').trim().split(/\s+/);
    expect(children).toHaveLength(1);
    return Number(children[0]);
  }

  exited(): boolean {
    try {
      return readFileSync(this.statusFile, 'utf8').endsWith('\n');
    } catch {
      return false;
    }
  }

  async waitForScreen(predicate: (screen: string) => boolean, what: string): Promise<string> {
    let last = '';
    try {
      await until(() => predicate((last = this.screen())), what, undefined, () => this.exited());
    } catch (error) {
      throw new Error(`${(error as Error).message}; the screen:\n${last}`);
    }
    return last;
  }

  /** Waits for the CLI to exit; its exit status and whether the alternate screen is still on. */
  async waitForExit(): Promise<{ status: number; alternate: boolean; cursorVisible: boolean }> {
    try {
      await until(() => this.exited(), 'the CLI to exit');
    } catch (error) {
      throw new Error(`${(error as Error).message}; the screen:\n${this.screen()}`);
    }
    await this.waitForScreen((s) => s.includes('AFTER-WATCH'), 'the shell after the CLI');
    return { status: Number(readFileSync(this.statusFile, 'utf8')), ...this.pane() };
  }

  close(): void {
    open.delete(this);
    try {
      this.run(['kill-server']);
    } catch {
      // already gone
    }
  }
}

function eightGpus(extraProcess?: { pid: number; usedBytes: number; smUtilPercent: number }) {
  return {
    driverVersion: '550.54.15',
    cudaDriverVersion: 12040,
    processUtilizationPeriodMs: 50,
    devices: Array.from({ length: 8 }, (_, i) =>
      mockDevice(i, 80, {
        utilization: { gpuPercent: 10 * i + 5, memoryPercent: 5 * i },
        temperatureCelsius: 40 + 5 * i,
        processes: [
          { pid: 1_990_000 + i, usedBytes: (i + 1) * 4 * GiB, smUtilPercent: 10 * i + 5 },
          ...(i === 0 && extraProcess ? [extraProcess] : []),
        ],
      }),
    ),
  };
}

describe('on a terminal', () => {
  it('draws every GPU with bars and history, and a process table with users and commands', async () => {
    const me = process.pid;
    const scenario = dir.write('eight.json', eightGpus({ pid: me, usedBytes: 9 * GiB, smUtilPercent: 33 }));
    const term = new Terminal(['watch', '--mock', scenario], { width: 140, height: 45 });
    try {
      const screen = await term.waitForScreen(
        (s) => /GPU 7 +NVIDIA H100 80GB HBM3/.test(s) && s.includes(String(me)) && /UTIL ▕█/.test(s),
        'all eight GPUs and the process table',
      );
      const rows = screen.split('\n');
      expect(rows[0]).toMatch(/^vramguard {2}driver 550\.54\.15 {2}CUDA 12\.4 {2}8 GPUs {2}every 1s {2}\(mock NVML\) +\d\d:\d\d:\d\d {2}q: quit$/);
      for (let i = 0; i < 8; i++) {
        const title = rows.findIndex((r) => r.startsWith(` GPU ${i}  NVIDIA H100 80GB HBM3`));
        expect(title, `GPU ${i}`).toBeGreaterThan(0);
        expect(rows[title]).toContain(`${40 + 5 * i}°C`);
        expect(rows[title + 1]).toMatch(new RegExp(`^ {3}UTIL ▕[█▏▎▍▌▋▊▉ ]+▏ +${10 * i + 5}% `));
        expect(rows[title + 2]).toMatch(/^ {3}MEM {2}▕[█▏▎▍▌▋▊▉ ]+▏ +\d+% +[\d.]+ GiB \/ 80\.0 GiB +[▁▂▃▄▅▆▇█]+$/);
      }
      // GPU 6 at 65 % utilization: a bar two thirds full.
      const util6 = rows[rows.findIndex((r) => r.startsWith(' GPU 6 ')) + 1]!;
      const cells = /▕(.*)▏/.exec(util6)![1]!;
      const filled = [...cells].filter((c) => c === '█').length;
      expect(filled / [...cells].length).toBeGreaterThan(0.6);
      expect(filled / [...cells].length).toBeLessThan(0.7);

      expect(screen).toMatch(/^ GPU +PID +TYPE +USER +GPU-MEM +SM% +COMMAND/m);
      // A process that exists here: its user and command line from /proc.
      const mine = rows.find((r) => r.includes(` ${me} `))!;
      expect(mine).toMatch(new RegExp(`^ +0 +${me} +C +${userInfo().username} +9\\.0 GiB +33% +`));
      expect(mine).toContain(commandLineOf(me).slice(0, 40));
      // Mock pids that do not exist here: '-'.
      expect(rows.find((r) => r.includes(' 1990003 '))).toMatch(/^ +3 +1990003 +C +- +16\.0 GiB +35% +-$/);
    } finally {
      term.close();
    }
  });

  it('q quits with status 0 and gives the normal screen and the cursor back', async () => {
    const scenario = dir.write('quit.json', twoGpus());
    const term = new Terminal(['watch', '--mock', scenario], { width: 100, height: 30 });
    try {
      await term.waitForScreen((s) => s.includes('GPU 1'), 'the first frame');
      expect(term.pane()).toMatchObject({ alternate: true, cursorVisible: false });
      term.keys('q');
      expect(await term.waitForExit()).toMatchObject({ status: 0, alternate: false, cursorVisible: true });
      await term.waitForRestore();
      const screen = term.screen();
      expect(screen).toMatch(/^BEFORE-WATCH\nAFTER-WATCH\n/);
      expect(screen).not.toContain('GPU 1');
    } finally {
      term.close();
    }
  });

  it.each([
    ['Ctrl-C', (t: Terminal) => t.keys('C-c')],
    ['SIGTERM', (t: Terminal) => process.kill(t.cliPid(), 'SIGTERM')],
  ])('%s quits with status 0 and restores the terminal', async (_name, quit) => {
    const scenario = dir.write('signal.json', twoGpus());
    const term = new Terminal(['watch', '--mock', scenario], { width: 100, height: 30 });
    try {
      await term.waitForScreen((s) => s.includes('GPU 1'), 'the first frame');
      quit(term);
      expect(await term.waitForExit()).toMatchObject({ status: 0, alternate: false, cursorVisible: true });
      await term.waitForRestore();
      expect(term.screen()).toMatch(/^BEFORE-WATCH\nAFTER-WATCH\n/);
    } finally {
      term.close();
    }
  });

  it('redraws to fit when the terminal is resized', async () => {
    const scenario = dir.write('resize.json', eightGpus());
    const term = new Terminal(['watch', '--mock', scenario], { width: 120, height: 40 });
    try {
      await term.waitForScreen((s) => /^ {3}UTIL ▕/m.test(s) && s.includes('GPU 7'), 'the full layout');
      term.resize(72, 16);
      // Too short for three lines per GPU: one line per GPU, every one of them, within 72 columns.
      const small = await term.waitForScreen((s) => /^ 7 H100 80GB HBM3 /m.test(s), 'the compact layout');
      const rows = small.split('\n');
      expect(rows.some((r) => /^ {3}UTIL/.test(r))).toBe(false);
      for (let i = 0; i < 8; i++) expect(rows.find((r) => r.startsWith(` ${i} H100`))).toMatch(/UTIL ▕.*▏ +\d+% +MEM ▕.*▏ [\d.]+\/80\.0 GiB$/);
      term.resize(120, 40);
      await term.waitForScreen((s) => /^ {3}UTIL ▕/m.test(s) && s.includes(' GPU 7 '), 'the full layout again');
    } finally {
      term.close();
    }
  });

  it('colours by load, and none with NO_COLOR', async () => {
    const scenario = dir.write('colour.json', twoGpus());
    const coloured = new Terminal(['watch', '--mock', scenario], { width: 100, height: 30 });
    const plain = new Terminal(['watch', '--mock', scenario], { width: 100, height: 30, env: { NO_COLOR: '1' } });
    try {
      await coloured.waitForScreen((s) => s.includes('GPU 1'), 'the coloured frame');
      await plain.waitForScreen((s) => s.includes('GPU 1'), 'the plain frame');
      const withColour = coloured.screenWithEscapes();
      // GPU 1 at 90 %: a red bar; GPU 0 at 35 %: a green one.
      const util0 = withColour.split('\n').find((l) => l.includes('UTIL'))!;
      expect(util0).toMatch(/\u001b\[32m(\u001b\[[0-9;]*m)*█/);
      const util1 = withColour.split('\n').filter((l) => l.includes('UTIL'))[1]!;
      expect(util1).toMatch(/\u001b\[31m(\u001b\[[0-9;]*m)*█/);
      const noColour = plain.screenWithEscapes();
      expect(noColour).toContain('GPU 1');
      expect(noColour).not.toMatch(/\u001b\[[0-9;]*m/);
    } finally {
      coloured.close();
      plain.close();
    }
  });

  it('shows a GPU lost mid-run and the others go on', async () => {
    const scenario = dir.write('lost.json', twoGpus());
    const term = new Terminal(['watch', '--mock', scenario, '--interval', '100ms'], { width: 110, height: 30 });
    try {
      await term.waitForScreen((s) => s.includes('GPU 1'), 'the first frame');
      dir.control(scenario, { op: 'loseDevice', device: 1 });
      const screen = await term.waitForScreen((s) => s.includes('LOST: GPU_IS_LOST'), 'GPU 1 lost');
      expect(screen).toMatch(/^ GPU 1 +NVIDIA H100 80GB HBM3 +LOST: GPU_IS_LOST$/m);
      expect(screen).toMatch(/^ GPU 0 +NVIDIA H100 80GB HBM3 +00000000:18:00\.0/m);
      expect(screen).not.toContain('1999003'); // its processes are unknown while it is lost
    } finally {
      term.close();
    }
  });

  it('--ascii draws without block characters', async () => {
    const scenario = dir.write('ascii.json', twoGpus());
    const term = new Terminal(['watch', '--mock', scenario, '--ascii'], { width: 100, height: 30 });
    try {
      const screen = await term.waitForScreen((s) => /UTIL \[\|+ +\] +90%/.test(s), 'an ASCII bar');
      expect(screen).not.toMatch(/[█▁▂▃▄▅▆▇▕▏°…]/);
    } finally {
      term.close();
    }
  });
});

describe('without a terminal', () => {
  it('prints one plain line per GPU per pass, and exits 0 on Ctrl-C', async () => {
    const scenario = dir.write('plain.json', twoGpus());
    const cli = new CliProcess(['watch', '--mock', scenario, '--interval', '50ms']);
    try {
      const lines = () => cli.stdout.split('\n').slice(0, -1);
      await cli.until(() => lines().length >= 6, 'three passes');
      const pattern =
        /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z) {2}GPU ([01]) {2}NVIDIA H100 80GB HBM3 {2}util (\d+)% {2}mem [\d.]+ GiB \/ 80\.0 GiB \(\d+%\) {2}temp \d+C {2}power [\d ./]+W {2}\d+ process(es)?$/;
      for (const line of lines()) expect(line).toMatch(pattern);
      expect(lines()[0]).toMatch(/GPU 0 .* util 35% {2}mem 6\.0 GiB \/ 80\.0 GiB \(8%\) {2}temp 41C {2}power 123 \/ 700 W {2}2 processes$/);
      // Each pass: GPU 0 then GPU 1 with the same timestamp.
      const [first, second] = lines().map((l) => pattern.exec(l)!);
      expect(first![2]).toBe('0');
      expect(second![2]).toBe('1');
      expect(first![1]).toBe(second![1]);
      expect(cli.stdout).not.toContain('\u001b');
      expect(await cli.stop('SIGINT')).toEqual({ code: 0, signal: null });
      expect(cli.stderr).toBe('');
    } finally {
      cli.kill();
    }
  });

  it("follows a MIG-enabled GPU's line with a line per MIG device (the real reader on the mock, unprivileged)", async () => {
    const scenario = dir.write('plain-mig.json', twoGpus({ unprivileged: true, devices: [mockDevice(0), migGpu(1)] }));
    const cli = new CliProcess(['watch', '--mock', scenario, '--interval', '50ms']);
    try {
      const lines = () => cli.stdout.split('\n').slice(0, -1);
      await cli.until(() => lines().length >= 4, 'one pass');
      const [gpu0, gpu1, a, b] = lines().map((l) => l.slice(26)); // after the timestamp
      expect(gpu0).toMatch(/^GPU 0 /);
      // The board's memory is NO_PERMISSION unprivileged; its processes are its MIG devices'.
      expect(gpu1).toMatch(/^GPU 1 .* mem N\/A .* 4 processes$/);
      expect(a).toBe(`GPU 1  MIG 0  ${MIG_A}  GI 1 CI 0  mem 9.1 GiB / 40.0 GiB (23%)  3 processes`);
      expect(b).toBe(`GPU 1  MIG 2  ${MIG_B}  GI 2 CI 0  mem 7.0 GiB / 20.0 GiB (35%)  1 process`);
      expect(await cli.stop('SIGINT')).toEqual({ code: 0, signal: null });
    } finally {
      cli.kill();
    }
  });
});
