// End to end on the mock NVML: child processes hold VRAM through the mock's live control, the guard
// sees them through the native sampler (process-tree scope: they are our descendants), crosses the
// soft limit through a native watermark, calls the releaser, evicts the least recently used session
// whose dispose makes its child give the memory back; and SIGTERM drains with uses in flight.
import { type ChildProcess, fork, spawn } from 'node:child_process';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { VramQuotaError } from '../../src/errors';
import { type EvictEvent, VramGuard } from '../../src/guard';
import { mockDevice, type MockNvml } from '../../src/testing';
import { useMock } from '../helpers';

const GiB = 2 ** 30;
const root = join(__dirname, '..', '..');
let mock: MockNvml;

beforeAll(() => {
  mock = useMock({ processUtilizationPeriodMs: 50, devices: [mockDevice(0, 24, { processes: [{ pid: 1, usedBytes: 2 * GiB }] })] });
});
afterAll(() => mock.cleanup());

/** Starts a child holding gib on device 0; resolves once the mock lists it. */
function holdVram(gib: number): Promise<ChildProcess> {
  const child = fork(join(root, 'test', 'fixtures', 'vram-holder.cjs'), [mock.controlPath, '0', String(gib * GiB)]);
  return new Promise((resolve, reject) => {
    child.once('message', () => resolve(child));
    child.once('error', reject);
  });
}

function release(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    child.once('exit', () => resolve());
    child.send('release');
  });
}

async function waitUntil(predicate: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('guard on the mock NVML', () => {
  it('admits, sees children through NVML, relieves pressure by releaser then LRU eviction', async () => {
    const guard = new VramGuard({ quota: { soft: '10GiB', hard: '12GiB' }, hysteresis: '1GiB', interval: '20ms', idleTtl: null });
    const children = new Map<string, ChildProcess>();
    const evictions: EvictEvent[] = [];
    guard.on('evict', (e) => evictions.push(e));
    let releaserCalls = 0;
    guard.addReleaser('cache', () => {
      releaserCalls += 1;
    });
    try {
      await waitUntil(() => guard.health().state === 'ready');
      expect(guard.status().scope).toMatchObject({ inForce: 'process-tree', reason: null });
      const load = async (id: string, gib: number) => {
        const reservation = await guard.admit(gib * GiB, { id });
        const child = await holdVram(gib);
        children.set(id, child);
        return reservation.commit({ dispose: () => release(child) });
      };
      const a = await load('a', 4);
      await load('b', 4);
      await waitUntil(() => guard.status().usage.scopeBytes === 8 * GiB && guard.status().usage.deviceUsedBytes === 10 * GiB);
      await a.use(() => undefined); // a is now more recently used than b
      // c (3 GiB) fits under hard (12) but crosses soft (10): the native watermark wakes the guard.
      await load('c', 3);
      await waitUntil(() => evictions.length > 0);
      expect(releaserCalls).toBe(1);
      expect(evictions.map((e) => [e.id, e.reason])).toEqual([['b', 'pressure']]);
      await waitUntil(() => guard.status().usage.scopeBytes === 7 * GiB);
      expect(children.get('b')!.exitCode).toBe(0);
      // 6 GiB does not fit (12 - 7 = 5) unless something goes: a is busy, c is pinned by use... evict c? No:
      // c is idle and least recently used after a's use above, so admission evicts it.
      let finish!: () => void;
      const busy = a.use(() => new Promise<void>((r) => (finish = r)));
      const reservation = await guard.admit(6 * GiB, { id: 'd' });
      expect(evictions.map((e) => e.id)).toEqual(['b', 'c']);
      reservation.cancel();
      const error = await guard.admit(9 * GiB, { id: 'e' }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(VramQuotaError);
      expect((error as VramQuotaError).eviction.blocked).toEqual([{ id: 'a', bytes: 4 * GiB, reason: 'busy' }]);
      finish();
      await busy;
    } finally {
      await guard.close();
      for (const child of children.values()) if (child.exitCode === null) child.kill();
    }
  });

  it('a child that dies gives its memory back (the mock follows its pid)', async () => {
    const guard = new VramGuard({ quota: { hard: '12GiB' }, interval: '20ms' });
    try {
      const child = await holdVram(5);
      await waitUntil(() => guard.status().usage.scopeBytes === 5 * GiB);
      child.kill('SIGKILL');
      await waitUntil(() => guard.status().usage.scopeBytes === 0);
    } finally {
      await guard.close();
    }
  });
});

describe('SIGTERM with uses in flight', () => {
  it('finishes in-flight uses, disposes every session, exits 0', async () => {
    const child = spawn(process.execPath, [join(root, 'test', 'fixtures', 'guard-sigterm.cjs')], {
      env: { ...process.env, VRAMGUARD_ENTRY: join(root, 'dist', 'cjs', 'index.js') },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout!.on('data', (chunk: Buffer) => {
      out += chunk.toString();
    });
    await waitUntil(() => out.includes('ready\n'));
    child.kill('SIGTERM');
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
    const lines = out.trim().split('\n');
    expect(code).toBe(0);
    expect(lines[0]).toBe('ready');
    expect(lines).toContain('shutdown SIGTERM');
    // Every use finished before any session was disposed.
    const lastUse = Math.max(lines.indexOf('use done a'), lines.indexOf('use done b'));
    const firstDispose = Math.min(lines.indexOf('disposed a'), lines.indexOf('disposed b'));
    expect(lines.indexOf('use done a')).toBeGreaterThan(0);
    expect(lines.indexOf('use done b')).toBeGreaterThan(0);
    expect(firstDispose).toBeGreaterThan(lastUse);
    expect(lines.at(-1)).toBe('exit 0 closed');
  });
});
