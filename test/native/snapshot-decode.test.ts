// The packed snapshot path (native/js_snapshot.cc -> src/native-snapshot.ts): the compiled decoder and
// the loop over the layout build the same objects, for healthy devices, injected failures, a lost GPU
// and processes without byte counts; a small numbers array grows; the string table is reused.
import { afterEach, describe, expect, it } from 'vitest';

import * as nvml from '../../src/nvml';
import { SnapshotDecoder } from '../../src/native-snapshot';
import type { MockNvml, MockScenario } from '../../src/testing';
import { twoGpuScenario, useMock, waitFor } from '../helpers';
import { Sampler } from '../../src/sampler';
import { migGpu } from './mig-scenario';

let mock: MockNvml | undefined;
afterEach(() => {
  mock?.cleanup();
  mock = undefined;
});

function packed(scenario: MockScenario) {
  mock?.cleanup();
  mock = useMock(scenario);
  const result = nvml.binding().readOnce();
  if (!result.ok) throw new Error(result.reason);
  return result.snapshot;
}

function decoders() {
  const native = nvml.binding();
  const codeName = (n: number) => native.returnCodeName(n);
  return {
    compiled: new SnapshotDecoder(native.snapshotLayout, codeName),
    generic: new SnapshotDecoder(native.snapshotLayout, codeName, { generic: true }),
  };
}

const failures: Array<[string, string]> = [
  ['nvmlDeviceGetTemperature', 'NOT_SUPPORTED'],
  ['nvmlDeviceGetPowerUsage', 'NO_PERMISSION'],
  ['nvmlDeviceGetUUID', 'UNKNOWN'],
  ['nvmlDeviceGetHandleByIndex_v2', 'NO_PERMISSION'],
  ['nvmlDeviceGetEnforcedPowerLimit', 'NOT_SUPPORTED'],
  ['nvmlDeviceGetProcessesUtilizationInfo', 'NO_PERMISSION'],
  ['nvmlDeviceGetRunningProcessDetailList', 'GPU_IS_LOST'],
];

describe('packed snapshots', () => {
  it('MIG devices decode the same both ways: listed, unlistable, with failed readings, mode unknown', () => {
    const { compiled, generic } = decoders();
    const cases: Array<MockScenario['errors']> = [
      [],
      [{ function: 'nvmlDeviceGetMigDeviceHandleByIndex', return: 'UNKNOWN' }],
      [{ function: 'nvmlDeviceGetGpuInstanceId', return: 'NO_PERMISSION' }],
      [{ function: 'nvmlDeviceGetRunningProcessDetailList', return: 'UNKNOWN', count: 2 }],
      [{ function: 'nvmlDeviceGetMigMode', return: 'UNKNOWN' }],
    ];
    for (const errors of cases) {
      const scenario = twoGpuScenario();
      scenario.devices[1] = migGpu(1);
      scenario.errors = errors;
      const { numbers, strings } = packed(scenario);
      const a = compiled.decode(numbers, strings);
      const b = generic.decode(numbers, strings);
      const context = JSON.stringify(errors);
      expect(a, context).toEqual(b);
      expect(JSON.stringify(a), `${context}: same key order`).toBe(JSON.stringify(b));
      if (errors!.length === 0) expect(a.devices[1]!.mig!.instances).toHaveLength(2);
    }
  });

  it('the compiled decoder and the layout loop build the same objects', () => {
    const { compiled, generic } = decoders();
    expect(compiled.isCompiled).toBe(true);
    expect(generic.isCompiled).toBe(false);
    const healthy = packed(twoGpuScenario());
    expect(compiled.decode(healthy.numbers, healthy.strings)).toEqual(generic.decode(healthy.numbers, healthy.strings));
    for (const [fn, code] of failures) {
      const scenario = twoGpuScenario();
      scenario.errors = [{ function: fn, return: code, device: 0 }];
      const { numbers, strings } = packed(scenario);
      const a = compiled.decode(numbers, strings);
      const b = generic.decode(numbers, strings);
      expect(a, `${fn} -> ${code}`).toEqual(b);
      expect(JSON.stringify(a), `${fn} -> ${code}: same key order`).toBe(JSON.stringify(b));
      expect(Object.keys(a.devices[0]!.missing).length, `${fn} -> ${code}`).toBeGreaterThan(0);
    }
  });

  it('decodes readings, nulls, reasons, flags and the lost GPU as the types say', () => {
    const scenario = twoGpuScenario();
    scenario.errors = [{ function: 'nvmlDeviceGetTemperature', return: 'NOT_SUPPORTED', device: 0 }, { function: 'nvmlDeviceGetMemoryInfo_v2', return: 'GPU_IS_LOST', device: 1 }];
    const { numbers, strings } = packed(scenario);
    const snapshot = decoders().compiled.decode(numbers, strings);
    const [d0, d1] = snapshot.devices;
    expect(d0!.temperatureCelsius).toBeNull();
    expect(d0!.missing.temperatureCelsius).toEqual({ code: 'NOT_SUPPORTED', returnValue: 3, function: 'nvmlDeviceGetTemperature' });
    expect(d0!.gpuUtilizationRatio).toBe(0.35);
    expect(d0!.powerUsageWatts).toBe(123.456);
    expect(d0!.smClockHertz).toBe(1980e6);
    expect(d0!.processes!.map((p) => p.types)).toEqual([['compute'], ['compute', 'graphics']]);
    expect(d1!.lost).toBe(true);
    expect(d1!.lostReason).toEqual({ code: 'GPU_IS_LOST', returnValue: 15, function: 'nvmlDeviceGetMemoryInfo_v2' });
    expect(d1!.processes).toBeNull();
  });

  it('a sampler reuses its strings and grows a small numbers array', async () => {
    mock = useMock(twoGpuScenario());
    const sampler = new Sampler({ interval: '10ms' }).start();
    try {
      const first = await waitFor(sampler, (s) => s.devices.length === 2);
      const next = await waitFor(sampler, (s) => s.sequence > first.sequence);
      expect(next.devices[0]!.uuid).toBe(first.devices[0]!.uuid);
      expect(next.devices[1]!.processes!.find((p) => p.pid === 2002)!.usedBytes).toBeNull();
    } finally {
      sampler.close();
    }
    const decoder = decoders().compiled;
    decoder.numbers = new Float64Array(1);
    const raw = new (nvml.binding().Sampler)({ intervalMs: 10 }, () => {});
    expect(raw.start().ok).toBe(true);
    try {
      let slots: number | null | undefined = null;
      while (slots === null) slots = raw.latest(-1, decoder.numbers, decoder.strings);
      expect(slots).toBeLessThan(0); // too small: the slots it needs
      decoder.grow(-slots!);
      expect(raw.latest(-1, decoder.numbers, decoder.strings)).toBeGreaterThan(0);
      const strings = decoder.strings.length;
      expect(raw.latest(-1, decoder.numbers, decoder.strings)).toBeGreaterThan(0);
      expect(decoder.strings.length).toBe(strings); // nothing new to intern
      expect(decoder.decode().devices).toHaveLength(2);
    } finally {
      raw.stop();
    }
  });
});
