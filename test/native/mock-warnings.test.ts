// The mock's warnings (bad control-file lines, refused ops) reach tests through vramguard/testing.
import { appendFileSync } from 'node:fs';

import { afterAll, beforeAll, expect, it } from 'vitest';

import * as nvml from '../../src/nvml';
import { mockDevice, mockWarnings, type MockNvml } from '../../src/testing';
import { useMock } from '../helpers';

let mock: MockNvml;
beforeAll(() => {
  mock = useMock({ devices: [mockDevice(0, 16)] });
});
afterAll(() => mock.cleanup());

it('lists bad control-file lines and refused ops, one string each', async () => {
  const sampler = new (await import('../../src/sampler')).Sampler({ interval: '10ms' }).start();
  try {
    await sampler.next();
    expect(mockWarnings()).toEqual([]);
    appendFileSync(mock.controlPath, 'not json\n{"op":"setDevice","device":7}\n');
    mock.control.setDevice(0, { memory: { otherUsed: 10 * 2 ** 40 } }); // more than the GPU has: refused
    let warnings: string[] = [];
    while (warnings.length < 3) {
      await sampler.next();
      warnings = mockWarnings();
    }
    expect(warnings[0]).toMatch(/^control .*:1:1: invalid JSON/);
    expect(warnings[1]).toMatch(/:2: \$\.device: device index 7 is out of range \(the scenario has 1 device\)$/);
    expect(warnings[2]).toMatch(/:3: op refused: \$\.devices\[0\]\.memory: device 0 .* is over-committed/);
  } finally {
    sampler.close();
  }
  expect(nvml.probe().isMock).toBe(true);
});
