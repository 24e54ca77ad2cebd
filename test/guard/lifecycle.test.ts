// Every stage of the guard's life: starting → ready → draining → closed, what each accepts, and the
// shutdown handlers' order (drain, close, then onShutdown).
import { describe, expect, it } from 'vitest';

import { GuardDrainingError } from '../../src/errors';
import { VramGuard } from '../../src/guard';
import { Lifecycle, type DrainSteps } from '../../src/guard/lifecycle';
import { Reporter } from '../../src/guard/reporter';
import { FakeClock, FakeMonitor, flushMicrotasks } from '../../src/testing';

const GiB = 2 ** 30;

function steps(log: string[]): DrainSteps {
  return {
    admissionsSettled: async () => {
      log.push('admissions');
    },
    sessions: () => [],
    evict: async () => undefined,
    cancelReservations: () => log.push('reservations'),
    stop: () => log.push('stop'),
  };
}

describe('Lifecycle', () => {
  it('starts, becomes ready once, drains once, closes', async () => {
    const clock = new FakeClock();
    const life = new Lifecycle(clock, new Reporter(() => undefined, undefined), 1000);
    expect([life.state, life.accepting]).toEqual(['starting', true]);
    expect(() => life.assertAccepting()).not.toThrow();
    life.becomeReady();
    expect([life.state, life.accepting]).toEqual(['ready', true]);
    const log: string[] = [];
    const s = steps(log);
    const a = life.drain(s);
    const b = life.drain(s);
    expect(a).toBe(b);
    expect([life.state, life.accepting]).toEqual(['draining', false]);
    expect(() => life.assertAccepting()).toThrow(GuardDrainingError);
    life.becomeReady(); // no way back
    expect(life.state).toBe('draining');
    await a;
    expect(log).toEqual(['admissions', 'reservations', 'stop']);
    await life.close(s);
    expect(life.state).toBe('closed');
    expect(() => life.assertAccepting()).toThrow(/the guard is closed/);
    expect(log).toEqual(['admissions', 'reservations', 'stop']);
  });
});

describe('VramGuard stages', () => {
  it('starting without a sample, ready on the first, draining refuses work, closed after', async () => {
    const clock = new FakeClock();
    const monitor = new FakeMonitor([{ totalBytes: 24 * GiB }], { publish: false });
    const guard = new VramGuard({ monitor, clock, quota: { hard: '20GiB' }, scope: 'device' });
    expect(guard.health().state).toBe('starting');
    await expect(guard.admit(GiB).then((r) => r.cancel())).resolves.toBeUndefined(); // starting takes loads (ledger)
    monitor.publish();
    await flushMicrotasks();
    expect(guard.health()).toMatchObject({ state: 'ready', ok: true });
    const session = guard.sessions.register('m', { bytes: GiB, dispose: () => undefined });
    const draining = guard.drain();
    expect(guard.health()).toMatchObject({ state: 'draining', ok: false });
    await expect(guard.admit(GiB)).rejects.toBeInstanceOf(GuardDrainingError);
    await expect(session.use(() => 1)).rejects.toBeInstanceOf(GuardDrainingError);
    await draining;
    expect(session.state).toBe('evicted');
    await guard.close();
    expect(guard.health().state).toBe('closed');
    expect(monitor.watermarkList()).toEqual([]);
    expect(clock.pendingTimers()).toBe(0);
  });

  it('runs onSignal at once beside the drain, onShutdown after drain and close, then exits with the code', async () => {
    const clock = new FakeClock();
    const monitor = new FakeMonitor([{ totalBytes: 24 * GiB }]);
    const guard = new VramGuard({ monitor, clock, quota: { hard: '20GiB' }, scope: 'device' });
    let disposed = false;
    guard.sessions.register('m', { bytes: GiB, dispose: () => (disposed = true) });
    const seen: string[] = [];
    let done!: () => void;
    const finished = new Promise<void>((resolve) => (done = resolve));
    guard.installShutdownHandlers({
      signals: ['SIGUSR2'],
      exitCode: false,
      onSignal: (signal) => {
        seen.push(`onSignal ${signal} ${guard.health().state} disposed=${disposed}`);
      },
      onShutdown: (signal) => {
        seen.push(`${signal} ${guard.health().state} disposed=${disposed}`);
        done();
      },
    });
    process.emit('SIGUSR2', 'SIGUSR2');
    await finished;
    expect(seen).toEqual(['onSignal SIGUSR2 draining disposed=false', 'SIGUSR2 closed disposed=true']);
    expect(process.listenerCount('SIGUSR2')).toBe(0); // close() removed the handler
  });
});
