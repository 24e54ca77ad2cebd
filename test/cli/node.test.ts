// The node's participants in the CLI: `serve --processes` exports them and `watch` shows them (name,
// pid, quota, share, usage, reservations), read from the ledger directory without joining it.
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';

import { NodeLedger, type NodeReservation } from '../../src/node-ledger';
import { parseExposition, samples, valueOf } from './exposition';
import { CliProcess, eventually, GiB, mockDevice, promtoolPath, runCli, ScenarioDir, twoGpus } from './helpers';

vi.setConfig({ testTimeout: 120_000, hookTimeout: 60_000 });

let dir: ScenarioDir;
let nodeDir: string;
let policy: string;
let ledger: NodeLedger;
let reservation: NodeReservation;
const uuid = mockDevice(0).uuid!;

beforeAll(async () => {
  dir = new ScenarioDir();
  nodeDir = mkdtempSync(join(tmpdir(), 'vramguard-cli-node-'));
  policy = join(nodeDir, 'policy.json');
  writeFileSync(policy, JSON.stringify({ participants: { 'server-a': '30GiB' } }));
  chmodSync(policy, 0o644);
  ledger = await NodeLedger.join({ uuid, name: 'server-a', dir: nodeDir, deviceTotalBytes: 80 * GiB, hardBytes: 20 * GiB, usageBytes: 6 * GiB });
  const admitted = await ledger.admit(2 * GiB, { usageBytes: 6 * GiB });
  if (!admitted.admitted) throw new Error('fixture admission refused');
  reservation = admitted.reservation;
});
afterAll(async () => {
  await reservation?.cancel();
  await ledger?.close();
  rmSync(nodeDir, { recursive: true, force: true });
  dir.cleanup();
});

/** Every file of the ledger directory with its modification time: the CLI must leave them as they are. */
function files(): string {
  return readdirSync(nodeDir)
    .map((n) => `${n}@${statSync(join(nodeDir, n)).mtimeMs}`)
    .sort()
    .join(' ');
}

describe('node participants', () => {
  it('serve --processes exports each participant: usage, reservations, hard limit and share; promtool-clean', async () => {
    const before = files();
    const scenario = dir.write('node.json', twoGpus());
    const cli = new CliProcess(['serve', '--listen', '127.0.0.1:0', '--mock', scenario, '--processes', '--node-dir', nodeDir, '--node-policy', policy]);
    try {
      await cli.until(() => /listening on http:\/\/127\.0\.0\.1:\d+\/metrics/.test(cli.stderr), 'serve to listen');
      const base = `http://127.0.0.1:${/listening on http:\/\/127\.0\.0\.1:(\d+)\/metrics/.exec(cli.stderr)![1]}`;
      const body = await eventually(async () => {
        const text = await (await fetch(`${base}/metrics`)).text();
        return valueOf(parseExposition(text), 'vramguard_node_participant_used_bytes', { participant: 'server-a' }) !== undefined ? text : undefined;
      }, 'participant series');
      const m = parseExposition(body);
      const labels = { gpu: '0', participant: 'server-a', pid: String(process.pid) };
      expect(samples(m, 'vramguard_node_participant_used_bytes')).toEqual([{ name: 'vramguard_node_participant_used_bytes', labels, value: 6 * GiB }]);
      expect(valueOf(m, 'vramguard_node_participant_reserved_bytes', labels)).toBe(2 * GiB);
      expect(valueOf(m, 'vramguard_node_participant_quota_bytes', { ...labels, limit: 'hard' })).toBe(20 * GiB);
      expect(valueOf(m, 'vramguard_node_participant_quota_bytes', { ...labels, limit: 'share' })).toBe(30 * GiB);
      expect(execFileSync(promtoolPath(), ['check', 'metrics'], { input: body, encoding: 'utf8' }).trim()).toBe('');
    } finally {
      expect(await cli.stop('SIGTERM')).toEqual({ code: 0, signal: null });
    }
    // Read without joining: no entry of its own, nothing rewritten, nothing removed.
    expect(files()).toBe(before);
  });

  it('serve without --processes has no participant series', async () => {
    const scenario = dir.write('plain.json', twoGpus());
    const cli = new CliProcess(['serve', '--listen', '127.0.0.1:0', '--mock', scenario, '--node-dir', nodeDir]);
    try {
      await cli.until(() => /listening on http:\/\/127\.0\.0\.1:\d+\/metrics/.test(cli.stderr), 'serve to listen');
      const base = `http://127.0.0.1:${/listening on http:\/\/127\.0\.0\.1:(\d+)\/metrics/.exec(cli.stderr)![1]}`;
      const body = await (await fetch(`${base}/metrics`)).text();
      expect(body).not.toMatch(/vramguard_node_participant/);
    } finally {
      await cli.stop('SIGTERM');
    }
  });

  it('watch (not a terminal) prints a line per participant with name, pid, quota, share, usage and reservations', async () => {
    const before = files();
    const scenario = dir.write('watch.json', twoGpus());
    const cli = new CliProcess(['watch', '--mock', scenario, '--interval', '50ms', '--node-dir', nodeDir, '--node-policy', policy]);
    try {
      await cli.until(() => /participant server-a/.test(cli.stdout), 'a participant line');
      const row = cli.stdout.split('\n').find((l) => l.includes('participant server-a'))!;
      expect(row).toMatch(new RegExp(`GPU 0  participant server-a  pid ${process.pid}  quota 20\\.0 GiB  share 30\\.0 GiB  usage 6\\.0 GiB  reserved 2\\.0 GiB$`));
    } finally {
      await cli.stop('SIGINT');
    }
    expect(files()).toBe(before);
  });

  it('a bad --node-policy is a usage error naming it', async () => {
    const scenario = dir.write('bad.json', twoGpus());
    const result = await runCli(['watch', '--mock', scenario, '--node-policy', join(nodeDir, 'missing.json')]);
    expect(result.code).toBe(64);
    expect(result.stderr).toMatch(/--node-policy: .*missing\.json/);
  });
});

describe('the participants table of watch', () => {
  it('one row per participant under a header, cut to the lines it is given', async () => {
    const pc = (await import('picocolors')).default;
    const { participantTable } = await import('../../src/cli/participants');
    const ctx = { width: 100, height: 30, colors: pc.createColors(false), ascii: false, stringWidth: (t: string) => t.length };
    const rows = ledger.participants().map((info) => ({ gpu: 0, info: { ...info, shareBytes: 30 * GiB } }));
    const lines = participantTable([...rows, ...rows.map((r) => ({ ...r, info: { ...r.info, name: 'server-b', pid: 42, hardBytes: null } }))], 10, ctx);
    expect(lines[0]).toMatch(/^ GPU  PARTICIPANT\s+PID\s+QUOTA\s+SHARE\s+USAGE\s+RESERVED/);
    expect(lines[1]).toMatch(new RegExp(`^\\s+0  server-a\\s+${process.pid}\\s+20\\.0 GiB\\s+30\\.0 GiB\\s+6\\.0 GiB\\s+2\\.0 GiB$`));
    expect(lines[2]).toMatch(/^\s+0  server-b\s+42\s+-\s+30\.0 GiB/);
    expect(participantTable(rows, 1, ctx)).toEqual([]);
    expect(participantTable([...rows, ...rows, ...rows], 3, ctx)).toHaveLength(3); // header, a row, "... and 2 more"
  });
});
