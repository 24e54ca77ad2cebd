// One process of the node-wide bench: argv entry mode dir uuid count. Every mode runs on the mock NVML
// (env from the parent). mode 'guard': a single-process VramGuard (no node option), the baseline;
// 'node': a VramGuard with option node, all processes sharing the GPU's ledger in `dir`; 'ledger': the
// NodeLedger module alone (what the wired guard adds on top of it shows as node − ledger).
// 'entries': one process joins the ledger `entries` times (argv's sixth), then admits through the first
// alone: no contention, so what it times is the work under the lock with that many participants to read
// (the floor of every contended admission's hold of the lock).
// Prints 'ready', waits for 'go' (IPC), makes `count` admissions back to back (admit, then cancel at
// once), timing each admit() call, and sends the latencies (ms) back.
const [entry, mode, dir, uuid, countText, entriesText] = process.argv.slice(2);
const { NodeLedger, VramGuard } = require(entry);

const count = Number(countText);
const MiB = 2 ** 20;

async function setup() {
  if (mode === 'guard' || mode === 'node') {
    const guard = new VramGuard({
      quota: { hard: '70GiB' },
      scope: 'device',
      idleTtl: null,
      ...(mode === 'node' ? { node: { name: `bench-${process.pid}`, dir, lockTimeout: '60s' } } : {}),
    });
    await (await guard.admit(1)).cancel(); // ready (and, with node, joined)
    return {
      admit: async () => (await guard.admit(MiB)).cancel(),
      close: () => guard.close(),
    };
  }
  const join = (name) => NodeLedger.join({ uuid, name, dir, deviceTotalBytes: 2 ** 40, lockTimeout: '60s' });
  const ledger = await join(`bench-${process.pid}`);
  const others = [];
  if (mode === 'entries') for (let i = 1; i < Number(entriesText); i += 1) others.push(await join(`bench-${process.pid}-${i}`));
  return {
    admit: async () => {
      const result = await ledger.admit(MiB, { usageBytes: 0 });
      if (!result.admitted) throw new Error(`bench: refused ${JSON.stringify(result.figures)}`);
      await result.reservation.cancel();
    },
    close: async () => {
      for (const other of others) await other.close();
      await ledger.close();
    },
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
