// Child participants of the node-wide ledger for tests: fork, read their lines, wait on them, and
// make sure none is left behind.
import { type ChildProcess, fork } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const root = join(__dirname, '..', '..');
export const entry = join(root, 'dist', 'cjs', 'index.js');

export interface Child {
  process: ChildProcess;
  lines: string[];
  /** Resolves with the first line (already seen or to come) that matches. */
  line(pattern: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
  exited: Promise<number | null>;
}

const children = new Set<ChildProcess>();

export function forkChild(script: string, args: string[]): Child {
  const child = fork(join(root, 'test', 'fixtures', script), args, {
    env: { ...process.env, VRAMGUARD_ENTRY: entry },
    stdio: ['ignore', 'pipe', 'inherit', 'ipc'],
  });
  children.add(child);
  const lines: string[] = [];
  const waiters: Array<{ pattern: RegExp; resolve: (m: RegExpMatchArray) => void }> = [];
  let buffer = '';
  child.stdout!.setEncoding('utf8');
  child.stdout!.on('data', (chunk: string) => {
    buffer += chunk;
    for (let at = buffer.indexOf('\n'); at >= 0; at = buffer.indexOf('\n')) {
      const text = buffer.slice(0, at);
      buffer = buffer.slice(at + 1);
      lines.push(text);
      for (const w of [...waiters]) {
        const m = w.pattern.exec(text);
        if (m) {
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve(m);
        }
      }
    }
  });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => {
    children.delete(child);
    resolve(code);
  }));
  return {
    process: child,
    lines,
    exited,
    line(pattern, timeoutMs = 15_000) {
      for (const text of lines) {
        const m = pattern.exec(text);
        if (m) return Promise.resolve(m);
      }
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no line ${pattern} within ${timeoutMs} ms; got: ${lines.slice(-5).join(' | ')}`)), timeoutMs);
        waiters.push({ pattern, resolve: (m) => (clearTimeout(timer), resolve(m)) });
        void exited.then(() => setTimeout(() => reject(new Error(`child exited before ${pattern}; got: ${lines.slice(-5).join(' | ')}`)), 50));
      });
    },
  };
}

/** SIGKILLs every child still running (afterEach/afterAll). */
export function killChildren(): void {
  for (const child of children) child.kill('SIGKILL');
}

export function tempDir(): { dir: string; remove(): void } {
  const dir = mkdtempSync(join(tmpdir(), 'vramguard-node-'));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Polls predicate until it holds (every few ms), failing after timeoutMs. */
export async function until<T>(what: string, predicate: () => T | Promise<T>, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await predicate();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}
