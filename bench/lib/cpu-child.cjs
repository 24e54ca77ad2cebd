// Child process for the guard's CPU benchmark: runs one configuration for a while and reports its own
// CPU time (every thread, the native sampler's included) and memory.
//   node bench/lib/cpu-child.cjs <idle|sampler|guard> <seconds>
const mode = process.argv[2];
const seconds = Number(process.argv[3]);
const vramguard = require(process.env.VRAMGUARD_ENTRY);

let closeIt = () => {};
if (mode === 'sampler') {
  const sampler = new vramguard.Sampler({ interval: '10ms' }).start();
  closeIt = () => sampler.close();
} else if (mode === 'guard') {
  const guard = new vramguard.VramGuard({ quota: { soft: '8GiB', hard: '12GiB' }, interval: '10ms' });
  guard.sessions.register('model', { bytes: '2GiB', dispose: () => {} });
  closeIt = () => guard.close();
}
const keepAlive = setInterval(() => {}, 1000);
// Measure after a short warm-up, over the given window.
setTimeout(() => {
  const cpu0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  setTimeout(async () => {
    const cpu = process.cpuUsage(cpu0);
    const wallMs = Number(process.hrtime.bigint() - t0) / 1e6;
    const rss = process.memoryUsage().rss;
    await closeIt();
    clearInterval(keepAlive);
    process.stdout.write(JSON.stringify({ mode, wallMs, userMs: cpu.user / 1000, systemMs: cpu.system / 1000, rss }));
  }, seconds * 1000);
}, 1000);
