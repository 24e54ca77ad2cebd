// The example inference server in its real-runtime mode: node-llama-cpp on the CPU with the project's
// tiny generated GGUF, on the guard's ledger (no NVML). Four models, three of which never fit at once:
// concurrent load, a deterministic eviction (a model's context before the model), SIGTERM under load.
import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { collectJsonLines, requestOn, until } from './http';

const root = join(__dirname, '..', '..');
const MODELS = ['tiny-a', 'tiny-b', 'tiny-c', 'tiny-small'];

interface LogLine {
  time: number;
  event: string;
  [key: string]: unknown;
}
interface Status {
  quota: { hardBytes: number };
  usage: { ledgerBytes: number; reservedBytes: number; source: string };
  sessions: Array<{ id: string; state: string; parent: string | null }>;
}

let server: ChildProcess;
let port = 0;
const logs: LogLine[] = [];
let exitCode: Promise<number | null>;

beforeAll(async () => {
  server = spawn(process.execPath, [join(root, 'examples', 'inference-server', 'server.mjs'), '--runtime', 'node-llama-cpp', '--port', '0'], {
    // Here without NVML: the guard runs on its ledger, as a CPU-only server does (with NVML, the CPU
    // runtime holds no VRAM and the scope counts the same declared bytes).
    env: process.env,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  exitCode = new Promise((resolve) => server.once('exit', (code) => resolve(code)));
  collectJsonLines(server.stdout!, logs);
  await until(() => logs.some((l) => l.event === 'listening'), 60_000);
  port = logs.find((l) => l.event === 'listening')!.port as number;
  await until(async () => (await get('/health')).status === 200);
}, 90_000);

afterAll(() => {
  if (server.exitCode === null) server.kill('SIGKILL');
});

const request = (method: string, path: string, body?: object) => requestOn(port, method, path, body);
const get = (path: string) => request('GET', path);
const generate = (model: string, prompt = 'the cat and the dog') => request('POST', '/v1/generate', { model, prompt });
const status = async () => JSON.parse((await get('/status')).body) as Status;

async function unloadAll(): Promise<void> {
  await until(async () => {
    expect((await request('POST', '/admin/unload')).status).toBe(200);
    const { usage } = await status();
    return usage.ledgerBytes === 0 && usage.reservedBytes === 0;
  });
}

describe('inference server with node-llama-cpp (real models on the CPU)', () => {
  it('serves concurrent requests across more models than fit, never booking more than the hard limit', async () => {
    const first = await status();
    const hard = first.quota.hardBytes;
    const outcomes: number[] = [];
    const overBooked: string[] = [];
    let next = 0;
    const traffic = ['tiny-a', 'tiny-b', 'tiny-a', 'tiny-c', 'tiny-small', 'tiny-b'];
    // A fixed amount of work (not a duration): 4 clients, 36 requests.
    const clients = Array.from({ length: 4 }, async () => {
      while (next < 36) {
        const model = traffic[next++ % traffic.length]!;
        outcomes.push((await generate(model)).status);
        const { usage } = await status();
        if (usage.ledgerBytes + usage.reservedBytes > hard) overBooked.push(JSON.stringify(usage));
      }
    });
    await Promise.all(clients);
    const errors = logs.filter((l) => l.event === 'error');
    expect(outcomes.filter((s) => s !== 200 && s !== 503), JSON.stringify(errors)).toEqual([]);
    expect(outcomes.filter((s) => s === 200).length).toBeGreaterThan(0);
    expect(overBooked).toEqual([]);
    // Three of the models never fit together: the guard evicted for admissions (or refused).
    const evictions = logs.filter((l) => l.event === 'evict');
    expect(evictions.filter((l) => l.reason === 'admission').length + logs.filter((l) => l.event === 'refuse').length).toBeGreaterThan(0);
    // A model never went before its context.
    for (const e of evictions.filter((l) => !String(l.id).includes('#'))) {
      const sessions = e.sessions as Array<{ id: string; state: string }>;
      expect(sessions.find((s) => s.id === `${String(e.id)}#ctx`)?.state, `${String(e.id)} evicted with its context loaded`).not.toBe('loaded');
    }
    const { sessions } = await status();
    expect(sessions.filter((s) => s.id.endsWith('#ctx')).every((s) => s.parent === s.id.slice(0, -4))).toBe(true);
  }, 120_000);

  it('evicts the lowest-priority idle model for an admission, its context first, and reloads it on use', async () => {
    await unloadAll();
    await expect(generate('tiny-b').then((r) => r.status)).resolves.toBe(200); // priority 0
    await expect(generate('tiny-a').then((r) => r.status)).resolves.toBe(200); // priority 1
    const mark = logs.length;
    const answer = await generate('tiny-c');
    expect(answer.status).toBe(200);
    expect(JSON.parse(answer.body)).toMatchObject({ model: 'tiny-c' });
    const evicted = logs.slice(mark).filter((l) => l.event === 'evict').map((l) => [l.id, l.reason]);
    expect(evicted).toEqual([
      ['tiny-b#ctx', 'admission'],
      ['tiny-b', 'admission'],
    ]);
    // tiny-b comes back on its next request (through admission again).
    expect((await generate('tiny-b')).status).toBe(200);
    const { sessions } = await status();
    expect(sessions.find((s) => s.id === 'tiny-b')?.state).toBe('loaded');
  }, 60_000);

  it('on SIGTERM under load answers every request it took (200 or 503), disposes the models, exits 0', async () => {
    const outcomes: Array<number | string> = [];
    let stop = false;
    const loops = Array.from({ length: 4 }, async (_, i) => {
      while (!stop) {
        try {
          outcomes.push((await generate(MODELS[i % MODELS.length]!)).status);
        } catch (error) {
          const code = (error as NodeJS.ErrnoException).code ?? String(error);
          outcomes.push(code);
          if (code === 'ECONNREFUSED' || code === 'ECONNRESET') return;
        }
      }
    });
    await until(() => outcomes.length >= 4);
    server.kill('SIGTERM');
    expect(await exitCode).toBe(0);
    stop = true;
    await Promise.all(loops);
    expect(outcomes.filter((o) => o !== 200 && o !== 503 && o !== 'ECONNREFUSED' && o !== 'ECONNRESET')).toEqual([]);
    expect(logs.some((l) => l.event === 'shutdown')).toBe(true);
    expect(logs.filter((l) => l.event === 'evict' && l.reason === 'drain').length).toBeGreaterThan(0);
  }, 60_000);
});
