// Bad options from plain JavaScript: unknown keys named with the nearest valid one; quota mistakes in
// the values given.
import { describe, expect, it } from 'vitest';

import { InvalidOptionError } from '../../src/errors';
import { VramGuard } from '../../src/guard';
import { Sampler } from '../../src/sampler';
import { FakeClock, FakeMonitor } from '../../src/testing';

const GiB = 2 ** 30;
const make = (options: object) => () => new VramGuard({ monitor: new FakeMonitor([{ totalBytes: 24 * GiB }]), clock: new FakeClock(), ...options });

describe('unknown keys', () => {
  const rows: Array<[string, object, RegExp]> = [
    ['a typo', { quotas: { hard: '10GiB' } }, /^quotas: unknown option \(did you mean quota\?\); known: device, quota, /],
    ['case', { idleTTL: '1m' }, /^idleTTL: unknown option \(did you mean idleTtl\?\)/],
    ['nothing near', { frobnicate: 1 }, /^frobnicate: unknown option; known: /],
    ['nested in quota', { quota: { hard: '10GiB', sfot: '8GiB' } }, /^quota\.sfot: unknown option \(did you mean quota\.soft\?\)/],
    ['nested in trend', { trend: { windw: '1m' } }, /^trend\.windw: unknown option \(did you mean trend\.window\?\)/],
    ['nested in recycle', { recycle: { onleak: true } }, /^recycle\.onleak: unknown option \(did you mean recycle\.onLeak\?\)/],
  ];
  for (const [name, options, message] of rows) {
    it(`VramGuard: ${name}`, () => {
      expect(make(options)).toThrow(InvalidOptionError);
      expect(make(options)).toThrow(message);
    });
  }

  it('Sampler', () => {
    expect(() => new Sampler({ intervall: '1s' } as never)).toThrow(/^intervall: unknown option \(did you mean interval\?\); known: interval, devices, libraryPath$/);
    expect(() => new Sampler({ device: [0] } as never)).toThrow(/^device: unknown option \(did you mean devices\?\)/);
  });
});

describe('quota', () => {
  it('says hard is missing', () => {
    expect(make({ quota: { soft: '12GiB' } })).toThrow(/^quota\.hard: missing: quota needs hard/);
  });

  it('reports soft above hard in the values given', () => {
    expect(make({ quota: { soft: '90%', hard: '20GiB' } })).toThrow(/^quota\.soft: "90%" \(23192823398 bytes\) is above quota\.hard \("20GiB"\)$/);
    expect(make({ quota: { soft: 3000, hard: 2000 } })).toThrow(/^quota\.soft: 3000 is above quota\.hard \(2000\)$/);
  });
});
