// What bench/gpu/check.mjs compares vramguard with: nvidia-smi and NVIDIA's Python binding (through
// pynvml_read.py) on a GPU machine; in a dry run, stand-ins that answer in the same shapes and units
// from the mock's scenario (the figures the mock was given, not what vramguard read from it), so the
// comparisons themselves run, and a misnamed field or a wrong unit fails here before a GPU day.
import { execFileSync, spawnSync } from 'node:child_process';
import { join } from 'node:path';

const MiB = 2 ** 20;

/** The --query-gpu fields the check compares, in nvidia-smi's names. */
export const SMI_FIELDS = ['index', 'uuid', 'name', 'pci.bus_id', 'driver_version', 'memory.total', 'memory.used',
  'memory.free', 'memory.reserved', 'utilization.gpu', 'utilization.memory', 'temperature.gpu', 'power.draw',
  'enforced.power.limit', 'clocks.sm', 'clocks.mem'];

/**
 * Parses nvidia-smi's `--format=csv,noheader,nounits` output into one object per line; what it prints
 * for a reading it cannot give ("[N/A]", "[Not Supported]") becomes null.
 */
export function parseSmiCsv(text, fields) {
  return text.trim().split('\n').filter((line) => line !== '')
    .map((line) => Object.fromEntries(line.split(', ').map((v, i) => [fields[i], /^\[.*\]$/.test(v.trim()) ? null : v.trim()])));
}

/** nvidia-smi and pynvml on this machine; `pynvml` and `processUtilization` are null without nvidia-ml-py. */
export function realReferences(here) {
  const smi = (args) => execFileSync('nvidia-smi', args, { encoding: 'utf8', timeout: 30_000 });
  const python = (args, timeout) => JSON.parse(execFileSync('python3', [join(here, 'pynvml_read.py'), ...args], { encoding: 'utf8', timeout }));
  const hasPynvml = spawnSync('python3', ['-c', 'import pynvml']).status === 0;
  return {
    gpus: () => parseSmiCsv(smi([`--query-gpu=${SMI_FIELDS.join(',')}`, '--format=csv,noheader,nounits']), SMI_FIELDS),
    /** [pid, used MiB] per compute process, as nvidia-smi lists them. */
    computeApps: () => parseSmiCsv(smi(['--query-compute-apps=pid,used_memory', '--format=csv,noheader,nounits']), ['pid', 'used'])
      .map((row) => [Number(row.pid), Number(row.used)]),
    pynvml: hasPynvml ? (passes) => python([String(passes)], 120_000) : null,
    /** pynvml's process utilization samples for `pid` on GPU 0 (every sample the driver keeps). */
    processUtilization: hasPynvml ? (pid) => python(['--process-utilization', String(pid)], 30_000) : null,
  };
}

/**
 * Stand-ins answering from the scenario given to the mock (`processes()` returns the processes the check
 * has put on device 0 through the mock's control file). nvidia-smi's figures are what it prints without
 * units: MiB, watts with two decimals, MHz; pynvml's are NVML's own units (bytes, milliwatts).
 */
export function standInReferences(scenario, processes) {
  const used = (d, i) => (d.memory.otherUsed ?? 0) + (i === 0 ? processes() : d.processes ?? []).reduce((sum, p) => sum + p.usedBytes, 0);
  const reserved = (d) => d.memory.reserved ?? 0;
  return {
    gpus: () => scenario.devices.map((d, i) => ({
      index: String(i), uuid: d.uuid, name: d.name, 'pci.bus_id': d.pciBusId, driver_version: scenario.driverVersion,
      'memory.total': String(Math.floor(d.memory.total / MiB)), 'memory.used': String(Math.floor(used(d, i) / MiB)),
      'memory.free': String(Math.floor((d.memory.total - reserved(d) - used(d, i)) / MiB)),
      'memory.reserved': String(Math.floor(reserved(d) / MiB)),
      'utilization.gpu': String(d.utilization.gpuPercent), 'utilization.memory': String(d.utilization.memoryPercent),
      'temperature.gpu': String(d.temperatureCelsius), 'power.draw': (d.power.usageMilliwatts / 1000).toFixed(2),
      'enforced.power.limit': (d.power.limitMilliwatts / 1000).toFixed(2),
      'clocks.sm': String(d.clocks.smMhz), 'clocks.mem': String(d.clocks.memoryMhz),
    })),
    computeApps: () => processes().map((p) => [p.pid, Math.floor(p.usedBytes / MiB)]),
    processUtilization: (pid) => {
      const p = processes().find((x) => x.pid === pid);
      return p ? { smPercent: p.smUtilPercent ?? 0, samples: 1 } : { error: 'Not Found' };
    },
    pynvml: () => ({
      driverVersion: scenario.driverVersion,
      cudaDriverVersion: scenario.cudaDriverVersion,
      devices: scenario.devices.map((d, i) => ({
        index: i, uuid: d.uuid, name: d.name, pciBusId: d.pciBusId,
        memoryTotalBytes: d.memory.total, memoryUsedBytes: used(d, i), memoryReservedBytes: reserved(d),
        memoryFreeBytes: d.memory.total - reserved(d) - used(d, i),
        gpuUtilizationPercent: d.utilization.gpuPercent, memoryUtilizationPercent: d.utilization.memoryPercent,
        temperatureCelsius: d.temperatureCelsius, powerUsageMilliwatts: d.power.usageMilliwatts,
        powerLimitMilliwatts: d.power.limitMilliwatts, smClockMhz: d.clocks.smMhz, memoryClockMhz: d.clocks.memoryMhz,
        processes: (i === 0 ? processes() : d.processes ?? []).map((p) => ({ pid: p.pid, usedBytes: p.usedBytes })),
      })),
      passMedianSeconds: null,
    }),
  };
}
