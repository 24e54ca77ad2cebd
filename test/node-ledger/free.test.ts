import { expect, it } from 'vitest';

import { nodeFree, type NodeFreeInput } from '../../src/node-ledger/free';

const base: NodeFreeInput = {
  deviceFreeBytes: 60,
  deviceTotalBytes: 100,
  paddingBytes: 5,
  ownHardBytes: 50,
  ownUsageBytes: 10,
  ownReservedBytes: 5,
  others: [{ usageBytes: 20, reservedBytes: 10 }],
  shareBytes: null,
};

it('takes the smallest of device, own quota, node and share terms', () => {
  const r = nodeFree(base);
  // device 60-5-10-5 = 40; own 50-15 = 35; node 100-5-45 = 50
  expect(r.terms).toEqual({ device: 40, ownQuota: 35, node: 50, share: null });
  expect(r).toMatchObject({ freeBytes: 35, limitedBy: 'own-quota', nodeCommittedBytes: 45 });
  expect(nodeFree({ ...base, ownHardBytes: Infinity })).toMatchObject({ freeBytes: 40, limitedBy: 'device' });
  expect(nodeFree({ ...base, ownHardBytes: Infinity, deviceFreeBytes: null })).toMatchObject({ freeBytes: 50, limitedBy: 'node' });
  expect(nodeFree({ ...base, shareBytes: 20 })).toMatchObject({ freeBytes: 5, limitedBy: 'share' });
});

it('counts every other participant, and goes negative when the node is over', () => {
  const crowded = nodeFree({
    ...base,
    ownHardBytes: Infinity,
    deviceFreeBytes: null,
    others: [
      { usageBytes: 40, reservedBytes: 0 },
      { usageBytes: 30, reservedBytes: 20 },
    ],
  });
  expect(crowded).toMatchObject({ freeBytes: 100 - 5 - 15 - 90, limitedBy: 'node', nodeCommittedBytes: 105 });
});

it('without NVML and without a known total, only the own quota and share limit', () => {
  const r = nodeFree({ ...base, deviceFreeBytes: null, deviceTotalBytes: null, ownHardBytes: Infinity });
  expect(r.terms.device).toBeNull();
  expect(r.terms.node).toBeNull();
  expect(r.freeBytes).toBe(Infinity);
});
