// No NVIDIA library, or a bad scenario: the module still loads and says why in one line.
import { writeFileSync } from 'node:fs';

import { afterEach, describe, expect, it } from 'vitest';

import { InvalidOptionError, NvmlUnavailableError } from '../../src/errors';
import * as nvml from '../../src/nvml';
import { Sampler } from '../../src/sampler';
import { createMockNvml } from '../../src/testing';

const saved = { ...process.env };
afterEach(() => {
  for (const key of ['VRAMGUARD_NVML_LIBRARY', 'VRAMGUARD_MOCK_SCENARIO', 'VRAMGUARD_MOCK_CONTROL']) {
    if (saved[key] === undefined) delete process.env[key];
    else process.env[key] = saved[key];
  }
});

describe('without a usable NVML', () => {
  it('reports a missing library without throwing from available()', () => {
    const path = '/nonexistent/libnvidia-ml.so.1';
    expect(nvml.available({ libraryPath: path })).toBe(false);
    const reason = nvml.unavailableReason({ libraryPath: path })!;
    expect(reason).toContain(path);
    expect(reason).not.toContain('\n');
    const error = (() => {
      try {
        new Sampler({ libraryPath: path }).start();
      } catch (e) {
        return e as NvmlUnavailableError;
      }
      return undefined;
    })();
    expect(error).toBeInstanceOf(NvmlUnavailableError);
    expect(error).toMatchObject({ code: 'LIBRARY_NOT_FOUND', returnValue: 12, nvmlFunction: 'dlopen' });
  });

  it('explains a bad scenario: file, JSON path and what is wrong', () => {
    const mock = createMockNvml({ devices: [{ memory: { total: 1024 } }] });
    try {
      writeFileSync(mock.scenarioPath, JSON.stringify({ devices: [{ memory: { total: 'lots' } }] }));
      mock.activate();
      expect(() => nvml.probe()).toThrow(NvmlUnavailableError);
      const reason = nvml.unavailableReason()!;
      expect(reason).toContain(mock.scenarioPath);
      expect(reason).toContain('$.devices[0].memory.total');
      expect(reason).not.toContain('\n');

      writeFileSync(mock.scenarioPath, '{ "devices": [ { "memory": { "total": 1 } } ');
      expect(() => nvml.probe()).toThrow(/scenario\.json:1:45: invalid JSON/);

      writeFileSync(mock.scenarioPath, JSON.stringify({ devices: [{ memory: { total: 1 } }], typo: true }));
      expect(() => nvml.probe()).toThrow(/typo/);
    } finally {
      mock.cleanup();
    }
  });

  it('explains a missing scenario variable', () => {
    const mock = createMockNvml({ devices: [{ memory: { total: 1024 } }] });
    try {
      process.env.VRAMGUARD_NVML_LIBRARY = mock.libraryPath;
      delete process.env.VRAMGUARD_MOCK_SCENARIO;
      expect(() => nvml.probe()).toThrow(/VRAMGUARD_MOCK_SCENARIO/);
    } finally {
      mock.cleanup();
    }
  });
});

describe('native failures carry a kind, and the kind picks the error', () => {
  it('unavailable: NVML cannot be loaded; bad-device: an index past the count', () => {
    const missing = nvml.binding().readOnce('/nonexistent/libnvidia-ml.so.1');
    expect(missing).toMatchObject({ ok: false, kind: 'unavailable' }); // not found, or another library already loaded
    const mock = createMockNvml({ devices: [{ memory: { total: 1024 } }, { memory: { total: 1024 } }] });
    try {
      mock.activate();
      const bad = nvml.binding().readOnce(mock.libraryPath, [0, 9]);
      expect(bad).toMatchObject({ ok: false, kind: 'bad-device', code: 'INVALID_ARGUMENT' });
      expect(bad.ok === false && bad.reason).toBe('device index 9 does not exist (NVML reports 2 devices)');
      const error = (() => {
        try {
          new Sampler({ devices: [9] }).start();
        } catch (e) {
          return e;
        }
        return undefined;
      })();
      // The Sampler checks indexes itself and names the valid range (issue 9); readOnce reports the kind.
      expect(error).toBeInstanceOf(InvalidOptionError);
      expect((error as Error).message).toMatch(/9/);
      expect(() => nvml.readOnce({ devices: [9] })).toThrow(/device index 9 does not exist/);
    } finally {
      mock.cleanup();
    }
  });
});
