// `vramguard sample`: one record per device per sampling pass on stdout (and one per MIG device after
// its GPU's), as NDJSON or CSV.
import { Sampler } from '../sampler';
import type { Snapshot } from '../types';
import { type CommonOptions, EXIT_OK, onStopSignal, openNvml, passes, UsageError } from './common';
import { MockWarnings } from './mock-warnings';
import { deviceRecords, FIELD_NAMES, fieldByName, type SampleField, SAMPLE_FIELDS } from './schema';

export type SampleFormat = 'ndjson' | 'csv';

export interface SampleOptions extends CommonOptions {
  format: SampleFormat;
  intervalMs: number;
  count?: number;
  fields?: SampleField[];
}

/** Parses --fields: comma-separated names from the schema, each at most once. */
export function parseFields(value: string): SampleField[] {
  const names = value.split(',').map((s) => s.trim());
  const fields: SampleField[] = [];
  for (const name of names) {
    if (name.length === 0) throw new UsageError('--fields', `empty field name in ${JSON.stringify(value)}`);
    const field = fieldByName(name);
    if (!field) throw new UsageError('--fields', `unknown field ${JSON.stringify(name)} (fields: ${FIELD_NAMES.join(', ')})`);
    if (fields.includes(field)) throw new UsageError('--fields', `field ${JSON.stringify(name)} is given twice`);
    fields.push(field);
  }
  return fields;
}

/** RFC 4180: a cell is quoted when it holds a comma, a quote, CR or LF; quotes are doubled. */
export function csvCell(value: string | number | boolean | null): string {
  if (value === null) return '';
  const text = String(value);
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

/** The lines (each ending in \n) for one pass. */
export function formatPass(snapshot: Snapshot, fields: readonly SampleField[], format: SampleFormat): string {
  let out = '';
  for (const device of snapshot.devices) {
    for (const mig of deviceRecords(device)) {
      if (format === 'csv') {
        out += `${fields.map((f) => csvCell(f.read(device, snapshot, mig))).join(',')}\n`;
      } else {
        const record: Record<string, unknown> = {};
        for (const f of fields) record[f.name] = f.read(device, snapshot, mig);
        out += `${JSON.stringify(record)}\n`;
      }
    }
  }
  return out;
}

export function csvHeader(fields: readonly SampleField[]): string {
  return `${fields.map((f) => csvCell(f.name)).join(',')}\n`;
}

export async function runSample(options: SampleOptions): Promise<number> {
  const { devices } = openNvml(options);
  const fields = options.fields ?? SAMPLE_FIELDS;
  const sampler = new Sampler({ interval: options.intervalMs, devices }).start();
  const stdout = process.stdout;
  let written = 0;
  // `vramguard sample | head`: the reader went away, which ends the stream normally.
  stdout.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code === 'EPIPE') sampler.close();
    else throw error;
  });
  const removeSignals = onStopSignal(() => sampler.close());
  try {
    if (options.format === 'csv') stdout.write(csvHeader(fields));
    const warnings = new MockWarnings('sample');
    for await (const snapshot of passes(sampler)) {
      warnings.report();
      stdout.write(formatPass(snapshot, fields, options.format));
      written += 1;
      if (options.count !== undefined && written >= options.count) break;
    }
  } finally {
    removeSignals();
    sampler.close();
  }
  return EXIT_OK;
}
