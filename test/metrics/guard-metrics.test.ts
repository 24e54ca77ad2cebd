// Library-mode metrics: guard.metrics(registry) on a registry the host owns, read over the real addon
// on the mock. Same naming as `vramguard serve`, passes promtool, never touches the global registry.
import { execFileSync } from 'node:child_process';

import { register as globalRegistry, Registry } from 'prom-client';
import { afterAll, beforeAll, expect, it } from 'vitest';

import { VramGuard } from '../../src/guard';
import type { MockNvml } from '../../src/testing';
import { parseExposition, samples, valueOf } from '../cli/exposition';
import { promtoolPath } from '../cli/helpers';
import { GiB, twoGpuScenario, useMock } from '../helpers';

let mock: MockNvml;
beforeAll(() => {
  mock = useMock(twoGpuScenario());
});
afterAll(() => mock.cleanup());

async function until(predicate: () => boolean): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 10));
  }
}

it('registers GPU and guard metrics on the host registry, once, for every guard', async () => {
  const registry = new Registry();
  const guards = [0, 1].map(
    (device) =>
      new VramGuard({ device, quota: { soft: '20GiB', hard: '30GiB' }, interval: '20ms', scope: 'device', idleTtl: null, keepAlive: device === 0 ? { adaptive: true } : false }),
  );
  try {
    for (const guard of guards) guard.metrics(registry);
    guards[0]!.metrics(registry); // again: a no-op, not a clash
    await until(() => guards.every((g) => g.health().state === 'ready'));
    guards[0]!.addReleaser('cache', () => undefined);
    const session = guards[0]!.sessions.register('m', { bytes: '1GiB', dispose: () => undefined });
    guards[0]!.sessions.register('n', { bytes: '1GiB', dispose: () => undefined, keepAlive: { adaptive: false } });
    await session.use(() => undefined);
    await guards[0]!.sessions.unload('m');
    await guards[0]!.admit('1GiB', { id: 'x' }).then((r) => r.cancel());
    await guards[1]!.admit('100GiB', { id: 'huge' }).catch(() => undefined);

    const body = await registry.metrics();
    const families = parseExposition(body);
    // GPU metrics, as `vramguard serve` names them, for both guards' GPUs.
    expect(valueOf(families, 'vramguard_gpu_memory_used_bytes', { gpu: '0' })).toBe(6 * GiB);
    expect(valueOf(families, 'vramguard_gpu_memory_used_bytes', { gpu: '1' })).toBe(8 * GiB);
    expect(samples(families, 'vramguard_gpu_info').map((s) => s.labels.gpu).sort()).toEqual(['0', '1']);
    expect(samples(families, 'vramguard_gpu_info')[0]!.labels.driver_version).toBe('550.54.15');
    expect(valueOf(families, 'vramguard_sample_age_seconds')).toBeLessThan(5);
    // Guard metrics.
    expect(valueOf(families, 'vramguard_guard_scope_used_bytes', { gpu: '0' })).toBe(6 * GiB);
    expect(valueOf(families, 'vramguard_guard_quota_bytes', { gpu: '1', limit: 'hard' })).toBe(30 * GiB);
    expect(valueOf(families, 'vramguard_guard_sessions', { gpu: '0', state: 'evicted' })).toBe(1);
    expect(valueOf(families, 'vramguard_guard_evictions_total', { gpu: '0', reason: 'unload' })).toBe(1);
    expect(valueOf(families, 'vramguard_guard_admissions_total', { gpu: '0' })).toBe(1);
    expect(valueOf(families, 'vramguard_guard_admissions_refused_total', { gpu: '1' })).toBe(1);
    expect(valueOf(families, 'vramguard_guard_state', { gpu: '0', state: 'ready' })).toBe(1);
    expect(valueOf(families, 'vramguard_guard_scope_info', { gpu: '0', requested: 'device', in_force: 'device' })).toBe(1);
    expect(families.get('vramguard_guard_reaction_seconds')?.type).toBe('histogram');
    // Keep-alive: the forecast's horizon on the guard that has one (its figures need 30 s of buckets);
    // the TTL in force per session (adaptive without history and idleTtl null: the max, 30 min).
    expect(valueOf(families, 'vramguard_guard_forecast_horizon_seconds', { gpu: '0' })).toBe(60);
    expect(samples(families, 'vramguard_guard_forecast_horizon_seconds').map((s) => s.labels.gpu)).toEqual(['0']);
    expect(valueOf(families, 'vramguard_guard_session_idle_ttl_seconds', { gpu: '0', session: 'm' })).toBe(1800);
    expect(samples(families, 'vramguard_guard_session_idle_ttl_seconds').map((s) => s.labels.session)).toEqual(['m']);
    expect(samples(families, 'vramguard_guard_session_next_use_seconds')).toEqual([]);
    expect(valueOf(families, 'vramguard_guard_session_loads_total', { gpu: '0' })).toBe(0);
    expect(valueOf(families, 'vramguard_guard_prewarms_total', { gpu: '1' })).toBe(0);
    // Lint: names, units, HELP, _total.
    expect(execFileSync(promtoolPath(), ['check', 'metrics'], { input: body, encoding: 'utf8' })).toBe('');
    // The global default registry was not touched.
    expect((await globalRegistry.metrics()).includes('vramguard_')).toBe(false);
  } finally {
    await Promise.all(guards.map((g) => g.close()));
  }
});

it('counts the reaction time of a pressure episode', async () => {
  const registry = new Registry();
  const guard = new VramGuard({ device: 0, quota: { soft: '7GiB', hard: '9GiB' }, interval: '10ms', scope: 'device' });
  guard.metrics(registry);
  let released = false;
  guard.addReleaser('cache', () => {
    mock.control.setDevice(0, { memory: { otherUsed: 0 } });
  });
  guard.on('release', () => {
    released = true;
  });
  try {
    await until(() => guard.health().state === 'ready');
    mock.control.setDevice(0, { memory: { otherUsed: 2 * GiB } }); // 6 + 2 = 8 GiB > 7 soft
    await until(() => released);
    const families = parseExposition(await registry.metrics());
    expect(valueOf(families, 'vramguard_guard_releaser_calls_total', { gpu: '0', releaser: 'cache' })).toBe(1);
    expect(valueOf(families, 'vramguard_guard_pressure_episodes_total', { gpu: '0' })).toBe(1);
    expect(valueOf(families, 'vramguard_guard_reaction_seconds_count', { gpu: '0' })).toBe(1);
  } finally {
    await guard.close();
  }
});

it('with option node, guard series carry the participant, with the node room and participant count', async () => {
  const { mkdtempSync, rmSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const dir = mkdtempSync(join(tmpdir(), 'vramguard-node-metrics-'));
  const registry = new Registry();
  const options = { device: 0, quota: { hard: '60GiB' }, interval: '20ms', scope: 'device', idleTtl: null, padding: 0 } as const;
  const guards = [new VramGuard({ ...options, node: { name: 'server-a', dir } }), new VramGuard({ ...options, node: { name: 'server-b', dir } })];
  try {
    for (const guard of guards) guard.metrics(registry);
    const held = await guards[0]!.admit('10GiB', { id: 'x' });
    await guards[1]!.admit('1GiB', { id: 'y' }).then((r) => r.cancel());
    const body = await registry.metrics();
    const families = parseExposition(body);
    expect(valueOf(families, 'vramguard_guard_admissions_total', { gpu: '0', participant: 'server-a' })).toBe(1);
    expect(valueOf(families, 'vramguard_guard_admissions_total', { gpu: '0', participant: 'server-b' })).toBe(1);
    expect(valueOf(families, 'vramguard_guard_quota_bytes', { gpu: '0', participant: 'server-b', limit: 'hard' })).toBe(60 * GiB);
    expect(valueOf(families, 'vramguard_guard_node_participants', { gpu: '0', participant: 'server-a' })).toBe(2);
    // The node's room, as status() reports it.
    expect(valueOf(families, 'vramguard_guard_node_free_bytes', { gpu: '0', participant: 'server-b' })).toBe(guards[1]!.status().node!.freeBytes);
    expect(valueOf(families, 'vramguard_guard_reserved_bytes', { gpu: '0', participant: 'server-a' })).toBe(10 * GiB);
    expect(execFileSync(promtoolPath(), ['check', 'metrics'], { input: body, encoding: 'utf8' })).toBe('');
    held.cancel();
  } finally {
    await Promise.all(guards.map((g) => g.close()));
    rmSync(dir, { recursive: true, force: true });
  }
});
