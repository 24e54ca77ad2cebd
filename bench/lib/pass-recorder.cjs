// What a Sampler's passes took, from its 'sample' events (snapshot.passDurationMs, timed inside the native
// thread around the whole pass): shared by the core suite's in-process rounds and its child-process rounds
// (bench/lib/sampler-child.cjs), so both record the same way.

/** Processes in a snapshot's devices, and how many of them have SM utilization. */
function countProcesses(devices) {
  let processes = 0;
  let withSmUtil = 0;
  for (const device of devices) {
    for (const p of device.processes ?? []) {
      processes++;
      if (p.smUtilizationRatio > 0) withSmUtil++;
    }
  }
  return { processes, withSmUtil };
}

/**
 * Listens on the sampler's 'sample' events; the first warmupPasses are left out (the first pass also
 * acquires handles and reads identities). Returns a function that says what was seen so far.
 */
function recordPasses(sampler, warmupPasses) {
  const durationsNs = [];
  let lastSequence = 0;
  let last;
  let freshUtilizationPasses = 0;
  sampler.on('sample', (snapshot) => {
    if (snapshot.sequence === lastSequence) return;
    lastSequence = snapshot.sequence;
    last = snapshot;
    if (snapshot.sequence <= warmupPasses) return;
    durationsNs.push(snapshot.passDurationMs * 1e6);
    if (snapshot.devices[0]?.processUtilizationFresh) freshUtilizationPasses++;
  });
  return () => {
    const seen = countProcesses(last?.devices ?? []);
    return {
      durationsNs,
      passesSeen: durationsNs.length,
      passesRun: lastSequence - warmupPasses,
      devices: last?.devices.length ?? 0,
      processesLastPass: seen.processes,
      processesWithSmUtilLastPass: seen.withSmUtil,
      freshUtilizationPasses,
    };
  };
}

module.exports = { countProcesses, recordPasses };
