// `vramguard sample`'s MIG records without a process: formatPass on FakeMonitor samples (a MIG device
// list that cannot be read, MIG off, a lost GPU) in both formats.
import { parse as parseCsv } from 'csv-parse/sync';
import { expect, it } from 'vitest';

import { csvHeader, formatPass } from '../../src/cli/sample';
import { fieldByName, SAMPLE_FIELDS } from '../../src/cli/schema';
import { FakeMonitor } from '../../src/testing';

const GiB = 2 ** 30;
const MIG = 'MIG-12345678-0000-4000-8000-000000000001';

it('CSV: the MIG record after its GPU, its cells parsed back', () => {
  const monitor = new FakeMonitor([{ totalBytes: 80 * GiB, mig: { instances: [{ uuid: MIG, gpuInstanceId: 5, computeInstanceId: 1, totalBytes: 10 * GiB, processes: { 77: 2 * GiB } }] } }]);
  const text = csvHeader(SAMPLE_FIELDS) + formatPass(monitor.latest()!, SAMPLE_FIELDS, 'csv');
  const rows = parseCsv(text, { columns: true }) as Array<Record<string, string>>;
  expect(rows.map((r) => [r.gpu, r.mig_index, r.mig_uuid, r.gpu_instance_id, r.compute_instance_id, r.memory_total_bytes, r.process_count, r.temperature_celsius])).toEqual([
    ['0', '', '', '', '', String(80 * GiB), '1', '40'],
    ['0', '0', MIG, '5', '1', String(10 * GiB), '1', ''],
  ]);
});

it('no MIG records while the list cannot be read (its code on the GPU record), with MIG off, or while the GPU is lost', () => {
  const fields = ['gpu', 'mig_mode', 'mig_instances_reason', 'mig_index'].map((n) => fieldByName(n)!);
  const monitor = new FakeMonitor([
    { totalBytes: GiB, mig: { instances: [], instancesError: { code: 'UNKNOWN', returnValue: 999 } } },
    { totalBytes: GiB, mig: { mode: 'disabled', instances: [] } },
    { totalBytes: GiB, lost: true, mig: { instances: [{ uuid: MIG, gpuInstanceId: 1, totalBytes: GiB }] } },
  ]);
  expect(formatPass(monitor.latest()!, fields, 'ndjson')).toBe(
    '{"gpu":0,"mig_mode":"enabled","mig_instances_reason":"UNKNOWN","mig_index":null}\n' +
      '{"gpu":1,"mig_mode":"disabled","mig_instances_reason":null,"mig_index":null}\n' +
      '{"gpu":2,"mig_mode":null,"mig_instances_reason":null,"mig_index":null}\n',
  );
});
