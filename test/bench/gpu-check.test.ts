// The GPU check script's dry run: on the mock, it compares every field with stand-ins for nvidia-smi and
// pynvml that answer from the scenario, sees a process holding a known amount appear and a busy one's
// SM share, has a guard evict a worker, times a pass, runs the CLI, and compares struct layouts with a
// header (here one that includes ours, so they must agree); the steps that need a GPU say they were
// skipped.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, expect, it } from 'vitest';

import { createMockNvml, mockDevice } from '../../src/testing';

const root = join(__dirname, '..', '..');
const out = mkdtempSync(join(tmpdir(), 'vramguard-gpu-check-'));
afterAll(() => rmSync(out, { recursive: true, force: true }));

it("reads nvidia-smi's CSV, its [N/A] and [Not Supported] as null", async () => {
  const { parseSmiCsv } = (await import(join(root, 'bench', 'gpu', 'references.mjs'))) as {
    parseSmiCsv: (text: string, fields: string[]) => Array<Record<string, string | null>>;
  };
  expect(parseSmiCsv('0, NVIDIA H200, [N/A], 700.00\n1, NVIDIA H200, 41, [Not Supported]\n', ['index', 'name', 't', 'p'])).toEqual([
    { index: '0', name: 'NVIDIA H200', t: null, p: '700.00' },
    { index: '1', name: 'NVIDIA H200', t: '41', p: null },
  ]);
});

it('runs end to end on the mock and writes JSON and markdown', () => {
  const header = join(out, 'nvml.h');
  writeFileSync(header, `#include "${join(root, 'native', 'nvml_api.h')}"\n`);
  execFileSync(process.execPath, [join(root, 'bench', 'gpu', 'check.mjs'), '--dry-run'], {
    env: { ...process.env, OUT: out, VRAMGUARD_CHECK_NVML_H: header, VRAMGUARD_PACKAGE: root },
    encoding: 'utf8',
    timeout: 120_000,
  });
  const results = JSON.parse(readFileSync(join(out, 'gpu-check.json'), 'utf8')) as {
    dryRun: boolean;
    checks: Array<{ name: string; status: string; note: string }>;
  };
  expect(results.dryRun).toBe(true);
  expect(results.checks.map((c) => [c.name, c.status])).toEqual([
    ['fields: vramguard vs nvidia-smi vs pynvml', 'ok'],
    ['a torch process holding 2 GiB appears with its pid', 'ok'],
    ['a busy torch process shows its SM utilization (vramguard vs pynvml)', 'ok'],
    ['a guard evicts a torch-backed worker to admit another', 'ok'],
    ['timing: vramguard vs pynvml vs nvidia-smi', 'ok'],
    ['CLI: info --json and a serve scrape against nvidia-smi', 'ok'],
    ['struct sizes and offsets vs nvml.h', 'ok'],
  ]);
  expect(results.checks[0]!.note).toMatch(/^\d+ comparisons agree \(dry run: nvidia-smi and pynvml played by stand-ins/);
  expect(results.checks[1]!.note).toMatch(/nvidia-smi \d+ MiB, pynvml \d+ bytes/);
  expect(results.checks[2]!.note).toMatch(/^vramguard: SM 85 % at most .*; pynvml: SM 85 %/);
  expect(results.checks[5]!.note).toMatch(/^info agrees with nvidia-smi; serve: \/health 200/);
  expect(results.checks[6]!.note).toBe(`identical to ${header}`);
  expect(readFileSync(join(out, 'gpu-check.md'), 'utf8')).toMatch(/^# vramguard GPU check .*dry run on the mock\)/);
}, 150_000); // a run of about 7 s (measuring windows: 1 s of busy samples, 200 passes of 10 ms per side)

it('on a machine with nvidia-smi but neither nvidia-ml-py nor PyTorch: nvidia-smi alone, the torch steps skipped', () => {
  // The real path (no --dry-run): nvidia-smi is a stand-in answering from the mock's scenario, and
  // python3 one that has no module at all.
  const bin = join(out, 'bin');
  mkdirSync(bin, { recursive: true });
  writeFileSync(join(bin, 'nvidia-smi'), `#!/bin/sh\nexec "${process.execPath}" "${join(root, 'test', 'fixtures', 'fake-nvidia-smi.mjs')}" "$@"\n`, { mode: 0o755 });
  writeFileSync(join(bin, 'python3'), '#!/bin/sh\nexit 1\n', { mode: 0o755 });
  const header = join(out, 'nvml.h');
  writeFileSync(header, `#include "${join(root, 'native', 'nvml_api.h')}"\n`);
  const mock = createMockNvml({
    driverVersion: '580.65.06',
    cudaDriverVersion: 13000,
    devices: [mockDevice(0, 141, { name: 'NVIDIA H200', processes: [{ pid: 4242, usedBytes: 2 ** 30 }] })],
  });
  const realOut = join(out, 'real');
  try {
    execFileSync(process.execPath, [join(root, 'bench', 'gpu', 'check.mjs')], {
      env: { ...process.env, ...mock.env, PATH: `${bin}:${process.env.PATH}`, OUT: realOut, VRAMGUARD_CHECK_NVML_H: header, VRAMGUARD_PACKAGE: root },
      encoding: 'utf8',
      timeout: 120_000,
    });
  } finally {
    mock.cleanup();
  }
  const results = JSON.parse(readFileSync(join(realOut, 'gpu-check.json'), 'utf8')) as {
    dryRun: boolean;
    checks: Array<{ name: string; status: string; note: string; data?: Record<string, unknown> }>;
  };
  expect(results.dryRun).toBe(false);
  expect(results.checks.map((c) => c.status)).toEqual(['ok', 'skipped', 'skipped', 'skipped', 'ok', 'ok', 'ok']);
  expect(results.checks[0]!.note).toMatch(/^\d+ comparisons agree \(nvidia-smi only: no nvidia-ml-py for python3 here\)$/);
  for (const skipped of results.checks.slice(1, 4)) expect(skipped.note).toBe('no PyTorch with CUDA for python3 here');
  expect(results.checks[4]!.data).toHaveProperty('nvidiaSmiSpawnMs');
  expect(results.checks[4]!.data).not.toHaveProperty('pynvmlPassMs');
}, 150_000);
