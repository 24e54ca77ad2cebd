// The adaptive keep-alive's cost on the JavaScript thread: the guard's periodic work (every session's
// TTL decided from its gap histogram, the victim views, the forecast) for N sessions with a history,
// on the fake clock, against the fixed TTL with the same sessions and history. What is timed is 60
// fake seconds of ticks after 20 fake minutes of uses (each session at its own rate).
//   node bench/run.mjs keepalive-cost [--quick]
import { loadavg } from 'node:os';

export const id = 'keepalive-cost';
export const title = 'Keep-alive: the periodic cost of the adaptive TTL, per session count';

const GiB = 2 ** 30;

async function measure(lib, sessionCount, adaptive, historySeconds) {
  const { VramGuard } = lib.vramguard;
  const { FakeClock, FakeMonitor } = lib.testing;
  const clock = new FakeClock(0);
  const monitor = new FakeMonitor([{ totalBytes: 100_000 * GiB, processes: { [process.pid]: 0 } }]);
  const guard = new VramGuard({
    scope: { pids: [process.pid] },
    quota: { hard: 90_000 * GiB },
    monitor,
    clock,
    idleTtl: '30m',
    ...(adaptive ? { keepAlive: { adaptive: true, idleTtl: { min: '2m', max: '30m' } } } : {}),
  });
  try {
    monitor.publish();
    await clock.advance(10);
    const sessions = [];
    for (let i = 0; i < sessionCount; i += 1) {
      const reservation = await guard.admit(GiB, { id: `model-${i}` });
      sessions.push(reservation.commit({ bytes: GiB, dispose: () => undefined, load: () => undefined }));
    }
    // Each session used every 5 to 44 s (its own period), for historySeconds of fake time.
    for (let t = 0; t < historySeconds; t += 1) {
      for (let i = 0; i < sessionCount; i += 1) if ((t * 7 + i * 13) % (5 + (i % 40)) === 0) void sessions[i].use(() => undefined);
      monitor.publish();
      await clock.advance(1000);
    }
    const cpu = process.cpuUsage();
    const started = performance.now();
    for (let s = 0; s < 60; s += 1) {
      monitor.publish();
      await clock.advance(1000);
    }
    const used = process.cpuUsage(cpu);
    return { wallMsPerSecond: (performance.now() - started) / 60, cpuMsPerSecond: (used.user + used.system) / 1000 / 60 };
  } finally {
    await guard.close();
  }
}

export async function run(ctx) {
  const lib = { vramguard: ctx.vramguard, testing: ctx.testing };
  const counts = ctx.quick ? [10, 50] : [10, 100, 400];
  const history = ctx.quick ? 120 : 1200;
  const rows = [];
  const results = [];
  const loadBefore = loadavg();
  for (const n of counts) {
    ctx.log(`keepalive-cost: ${n} sessions`);
    const fixed = await measure(lib, n, false, history);
    const adaptive = await measure(lib, n, true, history);
    results.push({ sessions: n, fixed, adaptive });
    const ms = (v) => `${v.toFixed(3)} ms`;
    rows.push([String(n), ms(fixed.wallMsPerSecond), ms(adaptive.wallMsPerSecond), ms(adaptive.cpuMsPerSecond), `${((adaptive.wallMsPerSecond / 1000) * 100).toFixed(3)} %`]);
  }
  return {
    id,
    title,
    results: { history, results, loadBefore, loadAfter: loadavg() },
    tables: [
      {
        title: `Ticks of the guard per fake second, after ${history} fake seconds of uses (wall time of the JavaScript thread)`,
        columns: ['sessions', 'fixed TTL', 'adaptive', 'adaptive, CPU', 'adaptive, share of one core'].map((t, i) => ({ title: t, align: i ? 'right' : 'left' })),
        rows,
        footer: [`load average ${loadBefore.map((v) => v.toFixed(1)).join(' / ')} at start`],
      },
    ],
  };
}
