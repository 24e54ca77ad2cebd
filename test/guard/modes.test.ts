// The guard without NVML (its ledger), with unattributable per-process memory, with a logger, and
// with scheduled recycle advice.
import { expect, it } from 'vitest';

import { VramGuard } from '../../src/guard';
import { FakeClock, FakeMonitor } from '../../src/testing';
import { GiB, harness, OUR_PID } from './harness';

it('runs on its ledger without NVML, says so, and still relieves pressure and refuses what cannot fit', async () => {
  const clock = new FakeClock();
  const guard = new VramGuard({ libraryPath: '/nonexistent/libnvidia-ml.so.1', quota: { soft: '8GiB', hard: '10GiB' }, clock });
  const status = guard.status();
  expect(status.scope.inForce).toBe('ledger');
  expect(status.scope.reason).toMatch(/^NVML unavailable: cannot load the NVIDIA management library \/nonexistent/);
  expect(guard.health()).toMatchObject({ state: 'ready', ok: true, source: 'ledger' });
  const disposed: string[] = [];
  guard.sessions.register('a', { bytes: '5GiB', dispose: () => disposed.push('a') });
  await clock.advance(10);
  guard.sessions.register('b', { bytes: '4GiB', dispose: () => disposed.push('b'), pinned: true });
  await clock.advance(10);
  expect(disposed).toEqual(['a']); // 9 GiB > 8 soft: the older one goes
  expect(guard.status().usage).toMatchObject({ scopeBytes: 4 * GiB, source: 'ledger', ledgerBytes: 4 * GiB });
  const r = await guard.admit('5GiB', { id: 'c' });
  // 4 (pinned b) + 5 (reserved for c) + 2 > 10, and nothing can be evicted.
  await expect(guard.admit('2GiB', { id: 'd' })).rejects.toThrow(/cannot admit d .*could not evict b \(pinned\)/);
  r.cancel();
  expect(() => new VramGuard({ libraryPath: '/nonexistent/libnvidia-ml.so.1', quota: { hard: '90%' } })).toThrow(
    /^quota\.hard: "90%" needs the device's total memory, but NVML is unavailable/,
  );
  await guard.close();
});

it('falls back to device scope when NVML cannot attribute our memory', async () => {
  const clock = new FakeClock();
  const monitor = new FakeMonitor([{ totalBytes: 24 * GiB, otherUsedBytes: 3 * GiB, processes: { [OUR_PID]: null } }]);
  const guard = new VramGuard({ monitor, clock, scope: { pids: [OUR_PID] }, quota: { hard: '20GiB' } });
  expect(guard.status().scope).toMatchObject({ inForce: 'device' });
  expect(guard.status().scope.reason).toMatch(/no per-process memory for pids 1001 \(not available\)/);
  expect(guard.status().usage.scopeBytes).toBe(3 * GiB);
  await guard.close();
});

it('logs through a pino-compatible logger, and emits scheduled recycle advice only while idle', async () => {
  const lines: Array<[string, object, string | undefined]> = [];
  const logger = {
    info: (o: object, m?: string) => lines.push(['info', o, m]),
    warn: (o: object, m?: string) => lines.push(['warn', o, m]),
    error: (o: object, m?: string) => lines.push(['error', o, m]),
  };
  const h = harness({ logger, recycle: { every: '1h', onLeak: false } });
  const recycles: unknown[] = [];
  h.guard.on('recycle', (r) => recycles.push(r));
  const s = h.model('m', 21);
  let finish!: () => void;
  const use = s.use(() => new Promise<void>((r) => (finish = r)));
  await h.advance(61 * 60_000); // an hour passes with a use in flight: no advice
  expect(recycles).toEqual([]);
  finish();
  await use;
  await h.advance(2000);
  expect(recycles).toEqual([expect.objectContaining({ reason: 'schedule' })]);
  expect(lines.some(([level, obj, msg]) => level === 'warn' && msg === 'VRAM over the soft limit' && 'usageBytes' in obj)).toBe(true);
  expect(lines.every(([, obj]) => (obj as { component?: string }).component === 'vramguard')).toBe(true);
});
