// Faults between processes: a dead participant's reservations stop counting, a reused pid does not keep
// an entry alive, a lock holder that dies blocks no one, a live one times out with a typed error.
import { readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, expect, it } from 'vitest';

import { NodeLockTimeoutError } from '../../src/errors';
import { currentBootId, ownProcessKey } from '../../src/node-ledger/liveness';
import { NodeLedger } from '../../src/node-ledger';
import { forkChild, killChildren, tempDir, until } from './helpers';

const UUID = 'GPU-faults-0';
let temp: ReturnType<typeof tempDir>;
const ledgers: NodeLedger[] = [];

beforeEach(() => {
  temp = tempDir();
});
afterEach(async () => {
  killChildren();
  for (const l of ledgers.splice(0)) await l.close();
  temp.remove();
});

async function participant(name: string, extra: Partial<Parameters<typeof NodeLedger.join>[0]> = {}): Promise<NodeLedger> {
  const ledger = await NodeLedger.join({ uuid: UUID, name, dir: temp.dir, deviceTotalBytes: 1000, ...extra });
  ledgers.push(ledger);
  return ledger;
}

it('counts a live child reservation, and stops counting it once the child is SIGKILLed', async () => {
  const child = forkChild('node-holder.cjs', [temp.dir, UUID, 'child', '700', 'reservation']);
  await child.line(/^reserved$/);
  const me = await participant('me');
  expect((await me.admit(400, { usageBytes: 0 })).admitted).toBe(false);
  child.process.kill('SIGKILL');
  await child.exited;
  const result = await me.admit(400, { usageBytes: 0 });
  expect(result.admitted).toBe(true);
  // Housekeeping (same user) removed the dead participant's file.
  expect(readdirSync(temp.dir).filter((n) => n.includes(`.${child.process.pid}-`))).toEqual([]);
});

it('a participant that dies holding the lock blocks no one; a live holder makes others time out', async () => {
  const child = forkChild('node-holder.cjs', [temp.dir, UUID, 'child', '100', 'lock']);
  await child.line(/^holding$/);
  const me = await participant('me', { lockTimeout: '300ms' }).catch((e: unknown) => e);
  // join itself needs the lock: it times out while the child holds it.
  expect(me).toBeInstanceOf(NodeLockTimeoutError);
  expect((me as NodeLockTimeoutError).code).toBe('NODE_LOCK_TIMEOUT');
  expect((me as Error).message).toMatch(/not acquired within \d+ ms/);
  child.process.kill('SIGKILL');
  await child.exited;
  const started = Date.now();
  const after = await participant('me2', { lockTimeout: '10s' });
  expect(Date.now() - started).toBeLessThan(2000);
  expect((await after.admit(900, { usageBytes: 0 })).admitted).toBe(true);
});

it('ignores an entry whose pid is alive but whose start time is not that process (a reused pid)', async () => {
  const me = await participant('me');
  const key = ownProcessKey();
  const forged = join(temp.dir, `vramguard-${UUID}.${key.pid}-${Number(key.startTime) + 1}-7.json`);
  writeFileSync(
    forged,
    JSON.stringify({
      version: 1, name: 'ghost', pid: key.pid, startTime: String(Number(key.startTime) + 1), instance: 7,
      uid: process.getuid!(), bootId: currentBootId(), uuid: UUID, seq: 1, updatedAt: Date.now(),
      usageBytes: 900, sessions: [], reservations: [], reliefListener: false, relief: null, answers: [],
    }),
  );
  expect(me.participants().map((p) => p.name)).toEqual(['me']);
  expect((await me.admit(900, { usageBytes: 0 })).admitted).toBe(true);
  expect(readdirSync(temp.dir)).not.toContain(forged.split('/').pop());
});

it('waits for conditions only: reclaim is seen by participants() as soon as the process is gone', async () => {
  const child = forkChild('node-holder.cjs', [temp.dir, UUID, 'child', '300', 'reservation']);
  await child.line(/^reserved$/);
  const me = await participant('me');
  expect(me.participants().find((p) => p.name === 'child')?.reservedBytes).toBe(300);
  child.process.kill('SIGKILL');
  await until('child gone from the ledger', () => !me.participants().some((p) => p.name === 'child'), 5000);
});
