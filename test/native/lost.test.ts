// A GPU lost mid-run is marked lost (event emitted) without disturbing the others, and returns.
import { afterAll, beforeAll, expect, it } from 'vitest';

import { Sampler, type DeviceLostEvent, type DeviceRecoveredEvent } from '../../src/sampler';
import type { MockNvml } from '../../src/testing';
import { GiB, twoGpuScenario, useMock, waitFor } from '../helpers';

let mock: MockNvml;
beforeAll(() => {
  mock = useMock(twoGpuScenario());
});
afterAll(() => mock.cleanup());

it('marks only the lost GPU, emits events, and recovers', async () => {
  const sampler = new Sampler({ interval: '10ms' }).start();
  const lost: DeviceLostEvent[] = [];
  const recovered: DeviceRecoveredEvent[] = [];
  sampler.on('device-lost', (e) => lost.push(e));
  sampler.on('device-recovered', (e) => recovered.push(e));
  try {
    const before = await sampler.next();
    const uuid = before.devices[1]!.uuid;
    mock.control.loseDevice(1);
    const during = await waitFor(sampler, (s) => s.devices[1]!.lost);
    await waitFor(sampler, () => lost.length > 0);
    expect(lost).toEqual([
      expect.objectContaining({ device: 1, reason: expect.objectContaining({ code: 'GPU_IS_LOST', returnValue: 15 }) }),
    ]);
    const gone = during.devices[1]!;
    expect(gone.lostReason).toMatchObject({ code: 'GPU_IS_LOST' });
    expect(gone.memoryUsedBytes).toBeNull();
    expect(gone.missing.memoryUsedBytes).toMatchObject({ code: 'GPU_IS_LOST' });
    expect(gone.processes).toBeNull();
    expect(gone.uuid).toBe(uuid); // identity is kept while lost
    // The other GPU is untouched.
    expect(during.devices[0]).toMatchObject({ lost: false, memoryUsedBytes: 6 * GiB, missing: {} });

    mock.control.recoverDevice(1);
    const back = await waitFor(sampler, (s) => !s.devices[1]!.lost);
    await waitFor(sampler, () => recovered.length > 0);
    expect(recovered).toEqual([expect.objectContaining({ device: 1 })]);
    expect(back.devices[1]).toMatchObject({ lost: false, lostReason: null, memoryUsedBytes: 8 * GiB, uuid });
    expect(lost).toHaveLength(1);
  } finally {
    sampler.close();
  }
});
