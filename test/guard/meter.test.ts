// The meter, by table: which scope is in force and what it reads for each kind of sample, host-PID
// confirmation over time, return credits, and that read() changes nothing.
import { describe, expect, it } from 'vitest';

import { HOST_PID_CONFIRM_MS, Meter } from '../../src/guard/meter';
import type { ScopeOption } from '../../src/guard/scope';
import { FakeClock, FakeMonitor, type FakeDeviceState } from '../../src/testing';

const GiB = 2 ** 30;
const OUR = 1001;
/** init: a pid that exists in every PID namespace. */
const OTHER = 1;
/** A pid that exists in no namespace here. */
const FOREIGN = 4_000_000;

function meter(options: { device?: Partial<FakeDeviceState> | null; scope?: ScopeOption; ledger?: number; reserved?: number; lost?: boolean } = {}) {
  const clock = new FakeClock();
  const monitor = options.device === null ? null : new FakeMonitor([{ totalBytes: 24 * GiB, ...options.device }]);
  const changes: string[] = [];
  const m = new Meter(
    options.scope ?? { pids: [OUR] },
    {
      monitor,
      deviceIndex: 0,
      nvmlReason: 'no library',
      clock,
      deviceLost: () => options.lost ?? false,
      ledgerBytes: () => options.ledger ?? 0,
      reservedBytes: () => options.reserved ?? 0,
    },
    { returnRatio: 0.75, creditMs: 15_000, processTree: () => [OUR], onScopeChange: () => changes.push('scope'), onFallback: (p) => changes.push(p) },
  );
  return { m, clock, monitor, changes };
}

describe('scope in force', () => {
  const cases: Array<{
    name: string;
    setup: Parameters<typeof meter>[0];
    expected: { inForce: string; source: string; scopeBytes: number; reason: RegExp | null };
  }> = [
    {
      name: 'no NVML: the ledger, with reservations',
      setup: { device: null, ledger: 3 * GiB, reserved: GiB },
      expected: { inForce: 'ledger', source: 'ledger', scopeBytes: 4 * GiB, reason: /^NVML unavailable: no library$/ },
    },
    {
      name: 'GPU lost: the ledger',
      setup: { device: { lost: true }, ledger: 2 * GiB },
      expected: { inForce: 'ledger', source: 'ledger', scopeBytes: 2 * GiB, reason: /^GPU 0 unreadable \(GPU_IS_LOST\)$/ },
    },
    {
      name: 'device lost by the monitor event: the ledger',
      setup: { device: {}, lost: true, ledger: GiB },
      expected: { inForce: 'ledger', source: 'ledger', scopeBytes: GiB, reason: /unreadable/ },
    },
    {
      name: 'pids that match: their sum',
      setup: { device: { processes: { [OUR]: 3 * GiB, [OTHER]: 5 * GiB } } },
      expected: { inForce: 'pids', source: 'nvml', scopeBytes: 3 * GiB, reason: null },
    },
    {
      name: 'process tree: the tree read',
      setup: { device: { processes: { [OUR]: 2 * GiB, [OTHER]: 5 * GiB } }, scope: 'process-tree' },
      expected: { inForce: 'process-tree', source: 'nvml', scopeBytes: 2 * GiB, reason: null },
    },
    {
      name: 'device scope: the device used bytes',
      setup: { device: { otherUsedBytes: GiB, processes: { [OUR]: 2 * GiB } }, scope: 'device' },
      expected: { inForce: 'device', source: 'nvml', scopeBytes: 3 * GiB, reason: null },
    },
    {
      name: 'our memory not attributable: device scope',
      setup: { device: { otherUsedBytes: 3 * GiB, processes: { [OUR]: null } } },
      expected: { inForce: 'device', source: 'nvml', scopeBytes: 3 * GiB, reason: /fell back to device scope: .*not available/ },
    },
    {
      name: 'NVML lags the ledger: at least the ledger',
      setup: { device: { processes: { [OUR]: GiB } }, ledger: 4 * GiB },
      expected: { inForce: 'pids', source: 'nvml', scopeBytes: 4 * GiB, reason: null },
    },
    {
      name: 'only foreign pids, not yet confirmed: still pids',
      setup: { device: { processes: { [FOREIGN]: 5 * GiB } } },
      expected: { inForce: 'pids', source: 'nvml', scopeBytes: 0, reason: null },
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const { m } = meter(c.setup);
      const r = m.read();
      expect({ inForce: r.inForce, source: r.source, scopeBytes: r.scopeBytes }).toEqual({
        inForce: c.expected.inForce,
        source: c.expected.source,
        scopeBytes: c.expected.scopeBytes,
      });
      if (c.expected.reason) expect(r.reason).toMatch(c.expected.reason);
      else expect(r.reason).toBeNull();
    });
  }
});

describe('host PIDs', () => {
  it('are believed after they persist for the confirmation time, seen on samples, and then hold for good', async () => {
    const { m, clock, monitor, changes } = meter({ device: { processes: { [FOREIGN]: 5 * GiB } } });
    m.advance();
    await clock.advance(HOST_PID_CONFIRM_MS - 1);
    expect(m.read().inForce).toBe('pids');
    await clock.advance(1);
    // read() sees the confirmation; only advance() makes it stick and tells the watermarks.
    expect(m.read().inForce).toBe('device');
    expect(changes).toEqual([]);
    expect(m.watermarkPids()).toEqual([OUR]);
    m.advance();
    expect(changes).toEqual([expect.stringMatching(/host PIDs/), 'scope']);
    expect(m.watermarkPids()).toBeUndefined();
    monitor!.removeProcess(0, FOREIGN);
    monitor!.setProcess(0, OUR, GiB);
    monitor!.publish();
    m.advance();
    expect(m.read()).toMatchObject({ inForce: 'device', reason: expect.stringMatching(/host PIDs/) });
  });

  it('start over when our pid shows up meanwhile (a process that just exited lingered)', async () => {
    const { m, clock, monitor } = meter({ device: { processes: { [FOREIGN]: 5 * GiB } } });
    m.advance();
    await clock.advance(HOST_PID_CONFIRM_MS / 2);
    monitor!.setProcess(0, OUR, GiB);
    monitor!.publish();
    m.advance();
    monitor!.removeProcess(0, OUR);
    monitor!.publish();
    m.advance();
    await clock.advance(HOST_PID_CONFIRM_MS / 2 + 1);
    expect(m.read().inForce).toBe('pids');
  });
});

describe('return credits', () => {
  const rows: Array<{ name: string; rawAfterGiB: number; afterMs: number; reliefGiB: number; returningGiB: number }> = [
    { name: 'NVML shows nothing back yet: relief counts the bytes as gone', rawAfterGiB: 10, afterMs: 0, reliefGiB: 6, returningGiB: 4 },
    { name: 'NVML shows half back: the other half still credited', rawAfterGiB: 8, afterMs: 0, reliefGiB: 6, returningGiB: 2 },
    { name: 'NVML shows most back (75%): the credit ends', rawAfterGiB: 7, afterMs: 0, reliefGiB: 7, returningGiB: 0 },
    { name: 'the credit expires', rawAfterGiB: 10, afterMs: 15_000, reliefGiB: 10, returningGiB: 0 },
  ];
  for (const row of rows) {
    it(row.name, async () => {
      const { m, clock, monitor } = meter({ device: { processes: { [OUR]: 10 * GiB } } });
      m.credit(4 * GiB, 10 * GiB);
      monitor!.setProcess(0, OUR, row.rawAfterGiB * GiB);
      monitor!.publish();
      await clock.advance(row.afterMs);
      const r = m.read();
      expect([r.scopeBytes, r.reliefBytes, r.returningBytes]).toEqual([row.rawAfterGiB * GiB, row.reliefGiB * GiB, row.returningGiB * GiB]);
    });
  }

  it('a credit that ended does not come back when usage rises again (advance forgets it)', () => {
    const { m, monitor } = meter({ device: { processes: { [OUR]: 10 * GiB } } });
    m.credit(4 * GiB, 10 * GiB);
    monitor!.setProcess(0, OUR, 6 * GiB);
    monitor!.publish();
    m.advance();
    monitor!.setProcess(0, OUR, 12 * GiB);
    monitor!.publish();
    expect(m.read()).toMatchObject({ scopeBytes: 12 * GiB, reliefBytes: 12 * GiB, returningBytes: 0 });
  });
});

it('read() is pure: a thousand reads change nothing', async () => {
  const { m, clock, changes } = meter({ device: { processes: { [OUR]: null } } });
  await clock.advance(HOST_PID_CONFIRM_MS * 2);
  const first = m.read();
  for (let i = 0; i < 1000; i += 1) m.read();
  expect(m.read()).toEqual(first);
  expect(changes).toEqual([]);
  expect(m.watermarkPids()).toEqual([OUR]);
});
