// Child process for the core suite's per-era call check: a Sampler on the mock library its environment
// names (VRAMGUARD_NVML_LIBRARY: one process per driver era, since a process loads one NVML), running at
// the given interval until the parent sends SIGTERM (or maxMs passes).
//   node bench/lib/sampler-child.cjs <intervalMs> <maxMs>
const vramguard = require(process.env.VRAMGUARD_ENTRY);

const intervalMs = Number(process.argv[2]);
const maxMs = Number(process.argv[3]);
const sampler = new vramguard.Sampler({ interval: intervalMs }).start();
const keepAlive = setInterval(() => {}, 1000); // the sampler's own handles are unref'd
const stop = () => {
  clearTimeout(timer);
  clearInterval(keepAlive);
  sampler.close();
};
const timer = setTimeout(stop, maxMs);
process.on('SIGTERM', stop);
