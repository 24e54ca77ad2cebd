// A lost GPU is reported at once through NVML events (a critical XID on the watcher's own thread), not
// at the sampler's next tick: with a 60 s interval, the 'device-lost' event still arrives (the test would
// time out waiting for the next pass otherwise), within about one event wait of the loss.
import { afterAll, beforeAll, expect, it } from 'vitest';

import { Sampler, type DeviceLostEvent } from '../../src/sampler';
import type { MockNvml } from '../../src/testing';
import { twoGpuScenario, useMock } from '../helpers';

let mock: MockNvml;
beforeAll(() => {
  mock = useMock(twoGpuScenario());
});
afterAll(() => mock.cleanup());

it('reports a lost GPU through a critical XID event without waiting for the next pass', async () => {
  const sampler = new Sampler({ interval: '60s' }).start();
  try {
    // next() would wait for the next 60 s tick: wait for the first pass's snapshot instead.
    while (!sampler.latest()) await new Promise((resolve) => setTimeout(resolve, 5));
    expect(sampler.latest()!.devices[1]!.lost).toBe(false);
    const lost = new Promise<DeviceLostEvent>((resolve) => sampler.once('device-lost', resolve));
    const before = Date.now();
    mock.control.loseDevice(1);
    const event = await lost;
    expect(event).toMatchObject({ device: 1, reason: expect.objectContaining({ code: 'GPU_IS_LOST' }) });
    expect(sampler.latest()!.devices[1]!.lost).toBe(true);
    expect(sampler.latest()!.devices[0]!.lost).toBe(false);
    expect(Date.now() - before).toBeLessThan(30_000); // far inside the 60 s interval
  } finally {
    sampler.close();
  }
}, 30_000);
