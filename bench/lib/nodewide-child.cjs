// One process of the node-wide bench: argv entry mode dir uuid count. mode 'node': a NodeLedger
// participant; mode 'guard': a single-process VramGuard without NVML (its own ledger), the baseline.
// Prints 'ready', waits for 'go' (IPC), makes `count` admissions back to back (admit, then cancel at
// once), timing each admit() call, and sends the latencies (ms) back.
const [entry, mode, dir, uuid, countText] = process.argv.slice(2);
const { NodeLedger, VramGuard } = require(entry);

const count = Number(countText);
const MiB = 2 ** 20;

async function setup() {
  if (mode === 'guard') {
    const guard = new VramGuard({ libraryPath: '/nonexistent/libnvidia-ml.so.1', quota: { hard: '1TiB' } });
    return {
      admit: async () => (await guard.admit(MiB)).cancel(),
      close: () => guard.close(),
    };
  }
  const ledger = await NodeLedger.join({ uuid, name: `bench-${process.pid}`, dir, deviceTotalBytes: 2 ** 40 });
  return {
    admit: async () => {
      const result = await ledger.admit(MiB, { usageBytes: 0 });
      if (!result.admitted) throw new Error(`bench: refused ${JSON.stringify(result.figures)}`);
      await result.reservation.cancel();
    },
    close: () => ledger.close(),
  };
}

setup().then((side) => {
  process.send({ type: 'ready' });
  process.once('message', async () => {
    const latencies = new Array(count);
    for (let i = 0; i < count; i += 1) {
      const started = performance.now();
      await side.admit();
      latencies[i] = performance.now() - started;
    }
    await side.close();
    process.send({ type: 'done', latencies }, () => process.disconnect());
  });
});
