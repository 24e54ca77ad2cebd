// Several servers, one (mocked) GPU: five child processes, each a real VramGuard with option node and
// relief on, admit, load (their pids' bytes on the mock through its live control), use and unload at
// random (seeded: VRAMGUARD_NODE_SEED=<n> replays each child's sequence; VRAMGUARD_NODE_GUARD_MS sets
// the length, 30 s by default). An observer holding the node's lock (where totals can only go down)
// adds what the mock GPU holds and every participant's reservations: never more than the usable
// memory. Midway one child is SIGKILLed holding a reservation; it must stop counting within a second,
// and the others must go on admitting.
import { closeSync, openSync, readdirSync, readSync, fstatSync } from 'node:fs';
import { afterAll, beforeAll, expect, it } from 'vitest';

import { NodeLedger } from '../../src/node-ledger';
import { LedgerPaths } from '../../src/node-ledger/directory';
import { NodeLock } from '../../src/node-ledger/lock';
import { mockDevice, type MockNvml } from '../../src/testing';
import { useMock } from '../helpers';
import { forkChild, killChildren, tempDir, until, type Child } from '../node-ledger/helpers';

const GiB = 2 ** 30;
const TOTAL = 40 * GiB;
const PADDING = 256 * 2 ** 20; // the guards' default padding
const USABLE = TOTAL - PADDING;
const DEVICE = mockDevice(0, TOTAL / GiB);
const seed = Number(process.env.VRAMGUARD_NODE_SEED ?? Math.floor(Math.random() * 2 ** 31));
const runMs = Number(process.env.VRAMGUARD_NODE_GUARD_MS ?? 30_000);
const temp = tempDir();
let mock: MockNvml;

beforeAll(() => {
  mock = useMock({ processUtilizationPeriodMs: 50, devices: [DEVICE] });
});
afterAll(() => {
  killChildren();
  mock?.cleanup();
  temp.remove();
});

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** What the mock GPU holds per pid, replayed from its control file (the children are its only writers). */
function mockResident(): { read(): number; close(): void } {
  const fd = openSync(mock.controlPath, 'r');
  const bytesByPid = new Map<number, number>();
  let offset = 0;
  let partial = '';
  const read = () => {
    const size = fstatSync(fd).size;
    if (size > offset) {
      const buffer = Buffer.alloc(size - offset);
      readSync(fd, buffer, 0, buffer.length, offset);
      offset = size;
      const text = partial + buffer.toString('utf8');
      const lines = text.split('\n');
      partial = lines.pop()!;
      for (const line of lines) {
        if (line.trim() === '') continue;
        const op = JSON.parse(line) as { op: string; pid: number; usedBytes?: number };
        if (op.op === 'setProcess') bytesByPid.set(op.pid, op.usedBytes ?? 0);
        else if (op.op === 'removeProcess') bytesByPid.delete(op.pid);
      }
    }
    let sum = 0;
    // The driver frees a dead process's memory (the mock's followPid does the same).
    for (const [pid, bytes] of bytesByPid) if (alive(pid)) sum += bytes;
    return sum;
  };
  return { read, close: () => closeSync(fd) };
}

function stats(child: Child): { admitted: number; refused: number; relief: number } {
  for (let i = child.lines.length - 1; i >= 0; i -= 1) {
    const m = /^stats (\d+) (\d+) (\d+)$/.exec(child.lines[i]!);
    if (m) return { admitted: Number(m[1]), refused: Number(m[2]), relief: Number(m[3]) };
  }
  return { admitted: 0, refused: 0, relief: 0 };
}

it(`five guards on one mocked GPU for ${runMs} ms never over-commit it; a SIGKILLed one is reclaimed (seed ${seed})`, async () => {
  console.log(`node-wide guards: VRAMGUARD_NODE_SEED=${seed} replays these sequences`);
  const children = Array.from({ length: 5 }, (_, i) => forkChild('guard-node-participant.cjs', [temp.dir, `server-${i}`, String(seed + i), String(20 * GiB)]));
  await Promise.all(children.map((c) => c.line(/^ready$/, 60_000)));
  const observer = await NodeLedger.join({ uuid: DEVICE.uuid, name: 'observer', dir: temp.dir, deviceTotalBytes: TOTAL, lockTimeout: '20s' });
  const lock = new NodeLock(new LedgerPaths(temp.dir, DEVICE.uuid).lock);
  const resident = mockResident();
  const started = Date.now();
  let worst = 0;
  let reads = 0;
  let observing = true;
  const observe = (async () => {
    while (observing) {
      // Under the lock nothing raises the total: no admission, no declare; releases and commits may
      // still land, and they only lower it (a commit turns a reservation into a session first, and the
      // child shows the bytes on the GPU after that).
      const sum = await lock.withLock(20_000, () => resident.read() + observer.participants().reduce((s, p) => s + p.reservedBytes, 0));
      worst = Math.max(worst, sum);
      reads += 1;
      expect(sum, `resident + reserved at read ${reads}`).toBeLessThanOrEqual(USABLE);
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  })();
  try {
    await until('half time', () => Date.now() - started >= runMs / 2, runMs);
    const victim = children[4]!;
    victim.process.send('stall');
    const stalled = await victim.line(/^stalled (\d+)$/, 30_000);
    await until('the victim holds its reservation', () => observer.participants().some((p) => p.pid === victim.process.pid && p.reservedBytes === Number(stalled[1])));
    const before = children.slice(0, 4).map((c) => stats(c).admitted);
    const killedAt = Date.now();
    victim.process.kill('SIGKILL');
    await victim.exited;
    await until('victim reclaimed', () => !observer.participants().some((p) => p.pid === victim.process.pid), 5000);
    const reclaimMs = Date.now() - killedAt;
    expect(reclaimMs).toBeLessThan(1000);
    // No deadlock: every survivor admits again after the kill.
    await until('survivors admit after the kill', () => children.slice(0, 4).every((c, i) => stats(c).admitted > before[i]!), 30_000);

    await until('end of the run', () => Date.now() - started >= runMs, runMs + 1000);
    observing = false;
    await observe;
    for (const c of children.slice(0, 4)) c.process.send('stop');
    const codes = await Promise.all(children.slice(0, 4).map((c) => c.exited));
    const lines = children.flatMap((c) => c.lines);
    expect(lines.filter((l) => /^(violation|error) /.test(l))).toEqual([]);
    expect(codes).toEqual([0, 0, 0, 0]);
    const totals = children.slice(0, 4).map(stats);
    console.log(
      `node-wide guards: ${reads} observer reads, worst ${(worst / GiB).toFixed(2)} of ${(USABLE / GiB).toFixed(2)} GiB usable, ` +
        `reclaimed in ${reclaimMs} ms, admitted/refused/relief evictions ${totals.map((t) => `${t.admitted}/${t.refused}/${t.relief}`).join(' ')}`,
    );
    for (const t of totals) expect(t.admitted).toBeGreaterThan(5);
    // Contended (the node refused some loads) and relieved across processes (some answered requests).
    expect(totals.some((t) => t.refused > 0)).toBe(true);
    expect(totals.reduce((s, t) => s + t.relief, 0)).toBeGreaterThan(0);
  } catch (error) {
    for (const c of children) console.log(`${c.process.pid}: ${c.lines.slice(-3).join(' | ')}`);
    console.log(JSON.stringify(observer.participants().map((p) => [p.name, p.pid, p.usageBytes / GiB, p.reservedBytes / GiB, p.sessions.length])));
    throw error;
  } finally {
    observing = false;
    await observe.catch(() => undefined);
    lock.close();
    resident.close();
    await observer.close();
  }
  // Every survivor removed its entry on close; the victim's was removed by a survivor's housekeeping.
  await until('entries gone', () => readdirSync(temp.dir).filter((n) => n.endsWith('.json')).length === 0, 5000);
}, runMs + 120_000);
