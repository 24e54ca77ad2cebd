// The ledger: free memory in one function (quota, device, extra constraints), and reservations that
// leave the accounting when committed, cancelled or disposed.
import { describe, expect, it } from 'vitest';

import { freeMemory, Ledger } from '../../src/guard/ledger';
import type { DeviceSample } from '../../src/types';

const GiB = 2 ** 30;
const device = (freeGiB: number) => ({ memoryFreeBytes: freeGiB * GiB }) as DeviceSample;

describe('freeMemory', () => {
  const rows: Array<[string, Parameters<typeof freeMemory>[0], { free: number; limitedBy: string }]> = [
    ['the quota: hard - scope - reserved', { measurement: { source: 'nvml', scopeBytes: 10 * GiB, device: device(60) }, reservedBytes: 2 * GiB, hardBytes: 20 * GiB, paddingBytes: GiB }, { free: 8 * GiB, limitedBy: 'quota' }],
    ['the device: free - padding - reserved', { measurement: { source: 'nvml', scopeBytes: 2 * GiB, device: device(5) }, reservedBytes: 2 * GiB, hardBytes: 20 * GiB, paddingBytes: GiB }, { free: 2 * GiB, limitedBy: 'device' }],
    ['on the ledger scope already includes the reservations', { measurement: { source: 'ledger', scopeBytes: 12 * GiB, device: null }, reservedBytes: 2 * GiB, hardBytes: 20 * GiB, paddingBytes: GiB }, { free: 8 * GiB, limitedBy: 'quota' }],
    ['over the limit: negative', { measurement: { source: 'nvml', scopeBytes: 22 * GiB, device: null }, reservedBytes: 0, hardBytes: 20 * GiB, paddingBytes: GiB }, { free: -2 * GiB, limitedBy: 'quota' }],
    [
      'an extra constraint (a node-wide budget) can lower it',
      { measurement: { source: 'nvml', scopeBytes: 2 * GiB, device: device(60) }, reservedBytes: GiB, hardBytes: 20 * GiB, paddingBytes: GiB, constraints: [{ name: 'node', roomBytes: (reserved) => 4 * GiB - reserved }, { name: 'none', roomBytes: () => null }] },
      { free: 3 * GiB, limitedBy: 'node' },
    ],
  ];
  for (const [name, input, expected] of rows) {
    it(name, () => {
      expect(freeMemory(input)).toMatchObject(expected);
    });
  }
});

describe('reservations', () => {
  it('count until cancelled, disposed or forgotten, once each', () => {
    const ledger = new Ledger();
    const commit = () => {
      throw new Error('not here');
    };
    const a = ledger.reserve('a', 2 * GiB, 0, commit);
    const b = ledger.reserve('b', 3 * GiB, 0, commit);
    const c = ledger.reserve(undefined, GiB, 0, commit);
    expect(ledger.reservedBytes()).toBe(6 * GiB);
    expect(ledger.idle()).toBe(false);
    a.cancel();
    a.cancel();
    expect(ledger.reservedBytes()).toBe(4 * GiB);
    b[Symbol.dispose]();
    expect([b.active, ledger.reservedBytes()]).toEqual([false, GiB]);
    ledger.forget(c);
    expect(ledger.reservedBytes()).toBe(0);
    expect(ledger.reservationList(10)).toEqual([]);
    expect(ledger.idle()).toBe(true);
  });
});
