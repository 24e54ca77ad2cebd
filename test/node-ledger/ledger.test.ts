// One process, several participants (each its own flock description): admission, damaged and forged
// files, unsafe directories, shares, relief.
import { chmodSync, mkdirSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, expect, it } from 'vitest';

import { NodeLedgerError, NodeShareError } from '../../src/errors';
import { currentBootId, ownProcessKey } from '../../src/node-ledger/liveness';
import { NodeLedger, type NodeLedgerOptions } from '../../src/node-ledger';
import { tempDir, until } from './helpers';

const UUID = 'GPU-ledger-0';
let temp: ReturnType<typeof tempDir>;
const ledgers: NodeLedger[] = [];

beforeEach(() => {
  temp = tempDir();
});
afterEach(async () => {
  for (const l of ledgers.splice(0)) await l.close();
  temp.remove();
});

async function participant(name: string, extra: Partial<NodeLedgerOptions> = {}): Promise<NodeLedger> {
  const ledger = await NodeLedger.join({ uuid: UUID, name, dir: temp.dir, deviceTotalBytes: 1000, tickInterval: '20ms', ...extra });
  ledgers.push(ledger);
  return ledger;
}

function entryFile(ledger: NodeLedger): string {
  const name = readdirSync(temp.dir).find((n) => n.endsWith(`-${ledger.instance}.json`));
  return join(temp.dir, name!);
}

it('serializes admissions: the second does not get what the first reserved; cancel returns it', async () => {
  const a = await participant('a');
  const b = await participant('b');
  const first = await a.admit(600, { usageBytes: 0 });
  expect(first.admitted).toBe(true);
  const second = await b.admit(600, { usageBytes: 0 });
  expect(second).toMatchObject({ admitted: false, figures: { freeBytes: 400, limitedBy: 'node', nodeCommittedBytes: 600 } });
  // The same figures as a query, without the lock and without reserving.
  expect(b.freeNow({ usageBytes: 0, hardBytes: 300 })).toMatchObject({ freeBytes: 300, limitedBy: 'own-quota', terms: { node: 400 } });
  expect(b.participants().find((p) => p.self)?.reservedBytes).toBe(0);
  if (!first.admitted) throw new Error('unreachable');
  await first.reservation.commit({ id: 'llama', releasable: true });
  expect(b.participants().find((p) => p.name === 'a')).toMatchObject({ usageBytes: 600, reservedBytes: 0, releasableBytes: 600 });
  await a.declare({ usageBytes: 0, sessions: [] });
  expect((await b.admit(600, { usageBytes: 0 })).admitted).toBe(true);
});

it('concurrent admissions from many participants never add up past the device', async () => {
  const parts = await Promise.all(Array.from({ length: 6 }, (_, i) => participant(`p${i}`)));
  const results = await Promise.all(parts.flatMap((p) => [p.admit(150, { usageBytes: 0 }), p.admit(150, { usageBytes: 0 })]));
  expect(results.filter((r) => r.admitted)).toHaveLength(6);
  const sum = (await parts[0]!.snapshot()).reduce((s, p) => s + p.reservedBytes + p.usageBytes, 0);
  expect(sum).toBe(900);
});

it('a damaged file of a live participant counts with its last valid copy, and its owner rewrites it', async () => {
  const a = await participant('a');
  const b = await participant('b');
  const problems: string[] = [];
  a.on('problem', (p) => problems.push(p.reason));
  const r = await b.admit(500, { usageBytes: 0 });
  expect(r.admitted).toBe(true);
  expect(a.participants().find((p) => p.name === 'b')?.reservedBytes).toBe(500);
  // Truncated (as a full tmpfs or a careless root would leave it): not trusted, not forgotten either.
  writeFileSync(entryFile(b), '{"version":1,"name":"b","pi');
  const refused = await a.admit(600, { usageBytes: 0 });
  expect(refused.admitted).toBe(false);
  expect(problems).toContain('truncated or not JSON');
  // b's tick notices its own file is not what it wrote and rewrites it.
  await until('b repaired its entry', () => a.participants().some((p) => p.name === 'b' && !p.stale), 5000);
});

it('never counts a forged entry (uid that does not own the file, other GPU, other boot)', async () => {
  const a = await participant('a');
  const problems: string[] = [];
  a.on('problem', (p) => problems.push(p.reason));
  const key = ownProcessKey();
  const forge = (instance: number, fields: Record<string, unknown>) =>
    writeFileSync(
      join(temp.dir, `vramguard-${UUID}.${key.pid}-${key.startTime}-${instance}.json`),
      JSON.stringify({
        version: 1, name: `forged${instance}`, pid: key.pid, startTime: key.startTime, instance, uid: process.getuid!(),
        bootId: currentBootId(), uuid: UUID, seq: 1, updatedAt: 0, usageBytes: 900, sessions: [], reservations: [],
        reliefListener: false, relief: null, answers: [], ...fields,
      }),
    );
  forge(901, { uid: process.getuid!() + 4242 });
  forge(902, { uuid: 'GPU-other' });
  forge(903, { bootId: 'another-boot' });
  forge(904, { usageBytes: -5 });
  forge(905, { instance: 1 });
  expect(a.participants().map((p) => p.name)).toEqual(['a']);
  expect((await a.admit(900, { usageBytes: 0 })).admitted).toBe(true);
  expect(problems).toEqual(
    expect.arrayContaining([
      expect.stringMatching(/^claims uid \d+ but the file belongs to uid \d+$/),
      'written for GPU GPU-other',
      'written before this boot',
      'bad usageBytes',
      'names another process than its file name',
    ]),
  );
});

it('refuses directories where others could remove entries, links, and bad uuids or names', async () => {
  const open = join(temp.dir, 'open');
  mkdirSync(open);
  chmodSync(open, 0o777);
  await expect(participant('a', { dir: open })).rejects.toThrow(/mode 777: writable by others without the sticky bit/);
  chmodSync(open, 0o1777);
  await expect(participant('a', { dir: open })).resolves.toBeInstanceOf(NodeLedger);
  symlinkSync(open, join(temp.dir, 'link'));
  await expect(participant('b', { dir: join(temp.dir, 'link') })).rejects.toThrow(NodeLedgerError);
  await expect(participant('c', { uuid: '../etc' })).rejects.toThrow(/expected a GPU UUID such as GPU-5f1c…, got "\.\.\/etc"/);
  await expect(participant('bad name!')).rejects.toThrow(/node\.name: expected 1-64 letters, digits or \._:@-, got "bad name!"/);
});

it('tells a participant that starts over its share, and refuses an admission past it with figures', async () => {
  const policyFile = join(temp.dir, 'policy.json');
  writeFileSync(policyFile, JSON.stringify({ participants: { a: 300, b: { share: 0.5 } }, default: '100B' }));
  chmodSync(policyFile, 0o644);
  const a = await participant('a', { policyFile, usageBytes: 400 });
  const over = await new Promise<NodeShareError>((resolve) => a.once('over-share', resolve));
  expect(over).toBeInstanceOf(NodeShareError);
  expect(over).toMatchObject({ code: 'NODE_SHARE', participant: 'a', shareBytes: 300, usageBytes: 400 });
  expect(a.overShare()?.message).toMatch(/participant a on GPU-ledger-0 is over its node share/);
  const b = await participant('b', { policyFile });
  expect(b.shareBytes()).toBe(500);
  const refused = await b.admit(501, { usageBytes: 0 });
  expect(refused.admitted).toBe(false);
  if (refused.admitted) throw new Error('unreachable');
  expect(refused.figures.limitedBy).toBe('share');
  expect(refused.shareError).toMatchObject({ code: 'NODE_SHARE', neededBytes: 501, shareBytes: 500 });
  expect(b.participants().find((p) => p.name === 'a')?.shareBytes).toBe(300);
  const c = await participant('c', { policyFile });
  expect(c.shareBytes()).toBe(100);
});

it('relief: a participant asks, the listeners run their handlers and answer, the room comes back', async () => {
  const a = await participant('a');
  const b = await participant('b');
  const c = await participant('c');
  const held = await b.admit(800, { usageBytes: 0 });
  if (!held.admitted) throw new Error('setup');
  await held.reservation.commit({ id: 'idle-model', releasable: true });
  const asked: Array<{ from: string; bytes: number }> = [];
  b.onReliefRequest(async (request) => {
    asked.push({ from: request.from, bytes: request.bytes });
    await b.declare({ usageBytes: 0, sessions: [] });
    return 800;
  });
  c.onReliefRequest(() => 0);
  await until('listeners published', () => a.participants().filter((p) => p.reliefListener).length === 2);
  expect((await a.admit(500, { usageBytes: 0 })).admitted).toBe(false);
  const outcome = await a.requestRelief(500, { timeout: '5s' });
  expect(asked).toEqual([{ from: 'a', bytes: 500 }]);
  expect(outcome.releasedBytes).toBe(800);
  expect(outcome.answers.map((x) => x.name).sort()).toEqual(['b', 'c']);
  expect(outcome.unanswered).toEqual([]);
  expect((await a.admit(500, { usageBytes: 0 })).admitted).toBe(true);
  // The request is withdrawn once answered: nobody handles it twice.
  expect(a.participants().find((p) => p.self)?.reservedBytes).toBe(500);
});

it('relief with no listener returns at once; an unanswered listener is reported at the timeout', async () => {
  const a = await participant('a');
  expect(await a.requestRelief(100)).toMatchObject({ releasedBytes: 0, answers: [], unanswered: [] });
  const b = await participant('b');
  b.onReliefRequest(() => new Promise<number>(() => {}));
  await until('listener published', () => a.participants().some((p) => p.reliefListener));
  const outcome = await a.requestRelief(100, { timeout: '200ms' });
  expect(outcome.unanswered.map((u) => u.name)).toEqual(['b']);
});

it('names bad figures instead of publishing them', async () => {
  const a = await participant('a');
  await expect(a.admit(10, { usageBytes: Number.NaN })).rejects.toThrow(/^own\.usageBytes: expected a non-negative number of bytes, got NaN/);
  await expect(a.admit(-1, { usageBytes: 0 })).rejects.toThrow(/^bytes: expected a non-negative number of bytes, got -1/);
  const first = await a.admit(10, { usageBytes: 0 }, { id: 'same' });
  const second = await a.admit(20, { usageBytes: 0 }, { id: 'same' });
  if (!first.admitted || !second.admitted) throw new Error('setup');
  await second.reservation.cancel();
  expect(a.participants()[0]!.reservations.map((r) => r.bytes)).toEqual([10]);
});

it('a relief handler that throws answers 0 bytes and reports the error', async () => {
  const a = await participant('a');
  const b = await participant('b');
  const errors: string[] = [];
  b.on('error', (e) => errors.push(e.message));
  b.onReliefRequest(() => {
    throw new Error('releaser broke');
  });
  await until('listener published', () => a.participants().some((p) => p.reliefListener));
  const outcome = await a.requestRelief(100);
  expect(outcome).toMatchObject({ releasedBytes: 0, answers: [{ name: 'b', releasedBytes: 0 }], unanswered: [] });
  expect(errors).toEqual(['releaser broke']);
});
