// Several processes on one GPU of declared bytes, admitting, using and releasing at random (seeded:
// VRAMGUARD_NODE_SEED=<n> replays the same per-child sequences; VRAMGUARD_NODE_STRESS_MS sets the
// length, 6 s by default: the 30 s run is the guards' one, test/guard/node-wide.test.ts). An observer reads every participant under the lock and checks that resident
// plus reserved bytes never exceed the usable memory. Midway one child is SIGKILLed while it holds the
// lock inside an admission: the others must go on, and its reservation must stop counting within 1 s.
import { readdirSync } from 'node:fs';
import { afterAll, expect, it } from 'vitest';

import { NodeLedger } from '../../src/node-ledger';
import { forkChild, killChildren, tempDir, until, type Child } from './helpers';

const GiB = 2 ** 30;
const TOTAL = 40 * GiB;
const UUID = 'GPU-stress-0';
const seed = Number(process.env.VRAMGUARD_NODE_SEED ?? Math.floor(Math.random() * 2 ** 31));
const stressMs = Number(process.env.VRAMGUARD_NODE_STRESS_MS ?? 6_000);
const temp = tempDir();

afterAll(() => {
  killChildren();
  temp.remove();
});

function stats(child: Child): { admitted: number; refused: number } {
  for (let i = child.lines.length - 1; i >= 0; i -= 1) {
    const m = /^stats (\d+) (\d+)$/.exec(child.lines[i]!);
    if (m) return { admitted: Number(m[1]), refused: Number(m[2]) };
  }
  return { admitted: 0, refused: 0 };
}

it(`never over-commits across 5 processes for ${stressMs} ms; a SIGKILLed lock holder is reclaimed (seed ${seed})`, async () => {
  console.log(`node-ledger stress: VRAMGUARD_NODE_SEED=${seed} replays these sequences`);
  const children = Array.from({ length: 5 }, (_, i) =>
    forkChild('node-participant.cjs', [temp.dir, UUID, `p${i}`, String(seed + i), String(TOTAL)]),
  );
  await Promise.all(children.map((c) => c.line(/^ready$/)));
  const observer = await NodeLedger.join({ uuid: UUID, name: 'observer', dir: temp.dir, deviceTotalBytes: TOTAL, lockTimeout: '20s' });
  const started = Date.now();
  let worst = 0;
  let reads = 0;
  let observing = true;
  const observe = (async () => {
    while (observing) {
      const all = await observer.snapshot();
      const sum = all.reduce((s, p) => s + p.usageBytes + p.reservedBytes, 0);
      worst = Math.max(worst, sum);
      reads += 1;
      expect(sum, `resident + reserved at read ${reads}`).toBeLessThanOrEqual(TOTAL);
      await new Promise((resolve) => setTimeout(resolve, 2));
    }
  })();

  // Midway: the victim stalls inside an admission, holding the lock; SIGKILL it there.
  await until('half time', () => Date.now() - started >= stressMs / 2, stressMs);
  const victim = children[4]!;
  victim.process.send('stall');
  const stalled = await victim.line(/^stalled (\d+)$/, 20_000);
  expect(Number(stalled[1])).toBeGreaterThan(0);
  const before = children.slice(0, 4).map((c) => stats(c).admitted);
  const killedAt = Date.now();
  victim.process.kill('SIGKILL');
  await victim.exited;
  await until('victim reclaimed', () => !observer.participants().some((p) => p.pid === victim.process.pid), 5000);
  const reclaimMs = Date.now() - killedAt;
  expect(reclaimMs).toBeLessThan(1000);
  // No deadlock: every survivor admits again after the lock holder died.
  await until('survivors admit after the kill', () => children.slice(0, 4).every((c, i) => stats(c).admitted > before[i]!), 20_000);

  await until('end of the run', () => Date.now() - started >= stressMs, stressMs + 1000);
  observing = false;
  await observe;
  for (const c of children.slice(0, 4)) c.process.send('stop');
  const codes = await Promise.all(children.slice(0, 4).map((c) => c.exited));
  expect(codes).toEqual([0, 0, 0, 0]);
  const totals = children.slice(0, 4).map(stats);
  console.log(
    `node-ledger stress: ${reads} observer reads, worst ${(worst / GiB).toFixed(1)} of ${TOTAL / GiB} GiB, ` +
      `reclaimed in ${reclaimMs} ms, admitted/refused ${totals.map((t) => `${t.admitted}/${t.refused}`).join(' ')}`,
  );
  // The run was contended (refusals happened) and busy (admissions happened) in every survivor.
  for (const t of totals) expect(t.admitted).toBeGreaterThan(5);
  expect(totals.some((t) => t.refused > 0)).toBe(true);
  await observer.close();
  // Every survivor removed its entry; the victim's was removed by a survivor's housekeeping.
  expect(readdirSync(temp.dir).filter((n) => n.endsWith('.json'))).toEqual([]);
}, stressMs + 90_000);
