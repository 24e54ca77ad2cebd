// The JS half of scripts/soak.mjs: a Sampler at 10 ms on the mock in the environment, with 'sample'
// and 'watermark' listeners, two watermarks that usage crosses both ways every second (a process's
// bytes moved through the mock's live control: watermarks fire on crossings, not on moves), a next()
// every 100 ms and latest() on every sample. Heap and RSS after a full GC every second; the first fifth
// of the run is warm-up. Prints one JSON line; exits 1 when heap or RSS grew past the limits.
//   node --expose-gc scripts/soak-sampler.cjs <seconds>
const { appendFileSync } = require('node:fs');
const { join } = require('node:path');

const { Sampler } = require(join(__dirname, '..', 'dist', 'cjs', 'index.js'));

const LIMITS = { heapMiB: 1, rssMiB: 4 };
const seconds = Number(process.argv[2]);
if (!(seconds >= 5) || typeof global.gc !== 'function') {
  process.stderr.write('usage: node --expose-gc scripts/soak-sampler.cjs <seconds, at least 5>\n');
  process.exit(2);
}

const sampler = new Sampler({ interval: '10ms' }).start();
let passes = 0;
let crossings = 0;
let nexts = 0;
sampler.on('sample', (snapshot) => {
  passes += 1;
  if (sampler.latest().sequence < snapshot.sequence) throw new Error('latest() is older than the sampled snapshot');
});
sampler.on('watermark', () => {
  crossings += 1;
});
// bench/lib/scenario.mjs: 80 GiB devices, processes 10000 + 100 × device + n holding 2, 4, 6, 8 GiB.
const GiB = 2 ** 30;
const control = process.env.VRAMGUARD_MOCK_CONTROL;
if (!control) {
  process.stderr.write('soak-sampler: VRAMGUARD_MOCK_CONTROL is not set (run it through scripts/soak.mjs)\n');
  process.exit(2);
}
sampler.watch({ device: 0, thresholdBytes: 40 * GiB }); // the device: 20 GiB, or 58 with the move
sampler.watch({ device: 1, thresholdBytes: 20 * GiB, pids: [10100, 10101] }); // 6 GiB, or 44 with it
let flip = false;
const moves = setInterval(() => {
  // Up, then down, then up...: every move crosses both watermarks.
  flip = !flip;
  const usedBytes = (flip ? 40 : 2) * GiB;
  appendFileSync(
    control,
    `${JSON.stringify({ op: 'setProcess', device: 0, pid: 10000, usedBytes })}\n` +
      `${JSON.stringify({ op: 'setProcess', device: 1, pid: 10100, usedBytes })}\n`,
  );
}, 1000);
const nextTimer = setInterval(() => {
  sampler.next().then(
    () => {
      nexts += 1;
    },
    (error) => {
      // A next() still pending when the soak closes the sampler rejects with ClosedError, as documented.
      if (error.code !== 'CLOSED') throw error;
    },
  );
}, 100);

const samples = [];
const started = Date.now();
const measure = setInterval(() => {
  global.gc();
  const memory = process.memoryUsage();
  samples.push({ at: Date.now() - started, heap: memory.heapUsed, rss: memory.rss });
  if (Date.now() - started < seconds * 1000) return;
  clearInterval(measure);
  clearInterval(moves);
  clearInterval(nextTimer);
  sampler.close();
  const steady = samples.slice(Math.floor(samples.length / 5));
  const first = steady[0];
  const last = steady[steady.length - 1];
  const result = {
    seconds,
    passes,
    crossings,
    nexts,
    heapStart: first.heap,
    heapEnd: last.heap,
    heapMax: Math.max(...steady.map((s) => s.heap)),
    rssStart: first.rss,
    rssEnd: last.rss,
    rssMax: Math.max(...steady.map((s) => s.rss)),
    limits: LIMITS,
  };
  process.stdout.write(`${JSON.stringify(result)}\n`);
  const grew = last.heap - first.heap > LIMITS.heapMiB * 2 ** 20 || last.rss - first.rss > LIMITS.rssMiB * 2 ** 20;
  process.exitCode = grew || crossings < seconds || passes < seconds * 20 ? 1 : 0;
}, 1000);
