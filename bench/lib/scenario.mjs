// The mock GPU box every core benchmark reads: 8 devices, 4 processes on each, every process with
// non-zero utilization, so one pass exercises every NVML call and every code path of a steady pass
// (three process lists with data, a pid present in two lists, fresh process-utilization samples).

export const DEVICES = 8;
export const PROCESSES_PER_DEVICE = 4;
const GIB = 2 ** 30;
const TYPES = ['compute', 'compute', 'compute+graphics', 'mps'];

/**
 * The scenario, built with vramguard/testing's mockDevice().
 * processUtilizationPeriodMs is 1 ms: every pass (10 ms apart) finds new utilization samples, so the
 * sampler always takes the full merge path rather than the cheaper NOT_FOUND one.
 */
export function benchScenario(testing) {
  const devices = [];
  for (let d = 0; d < DEVICES; d++) {
    const processes = [];
    for (let p = 0; p < PROCESSES_PER_DEVICE; p++) {
      processes.push({
        pid: 10_000 + d * 100 + p,
        usedBytes: (p + 1) * 2 * GIB,
        type: TYPES[p % TYPES.length],
        smUtilPercent: 10 + 20 * p,
        memUtilPercent: 5 + 10 * p,
        encUtilPercent: p === 3 ? 7 : 0,
        decUtilPercent: 0,
      });
    }
    devices.push(
      testing.mockDevice(d, 80, {
        utilization: { gpuPercent: 40 + d, memoryPercent: 20 + d },
        processes,
      }),
    );
  }
  return { processUtilizationPeriodMs: 1, devices };
}
