// Child process for the core suite: a Sampler on the mock library its environment names
// (VRAMGUARD_NVML_LIBRARY; a process loads one NVML library, so each driver era and each scenario gets its
// own process), at the given interval, for at most maxMs or until the parent sends SIGTERM.
//   node bench/lib/sampler-child.cjs <intervalMs> <maxMs> [<warmupPasses>]
// With warmupPasses, the passes' durations are recorded (bench/lib/pass-recorder.cjs) and printed as one
// JSON object when the sampler stops.
const vramguard = require(process.env.VRAMGUARD_ENTRY);
const { recordPasses } = require('./pass-recorder.cjs');

const intervalMs = Number(process.argv[2]);
const maxMs = Number(process.argv[3]);
const warmupPasses = process.argv[4] === undefined ? undefined : Number(process.argv[4]);
const sampler = new vramguard.Sampler({ interval: intervalMs });
const seen = warmupPasses === undefined ? undefined : recordPasses(sampler, warmupPasses);
sampler.start();
const keepAlive = setInterval(() => {}, 1000); // the sampler's own handles are unref'd
const stop = () => {
  clearTimeout(timer);
  clearInterval(keepAlive);
  sampler.close();
  if (seen) process.stdout.write(`${JSON.stringify(seen())}\n`);
};
const timer = setTimeout(stop, maxMs);
process.on('SIGTERM', stop);
