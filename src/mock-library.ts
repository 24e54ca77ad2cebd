// Where vramguard's mock libnvidia-ml.so.1 lies: beside the loaded addon, one library per driver era.
// Used by the CLI's --mock and by vramguard/testing; production code takes it from here, never from the
// test kit.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

import { bindingPath } from './nvml';

/**
 * A driver era: which entry points the mock's libnvidia-ml exports and which record layouts it writes,
 * as that driver generation's did. Each era is its own library (a function the era lacks is absent from
 * dlsym); '580' is the default one.
 */
export type MockEra = '418' | '470' | '510' | '535.54' | '535.98' | '535.104' | '550' | '580';
export const MOCK_ERAS: readonly MockEra[] = ['418', '470', '510', '535.54', '535.98', '535.104', '550', '580'];

/**
 * Path of the mock libnvidia-ml.so.1 built beside the loaded addon, for a driver era (default '580':
 * mock/libnvidia-ml.so.1; the others mock-eras/libnvidia-ml-<era>.so.1). `legacy` is era '418'.
 */
export function mockLibraryPath(options: { era?: MockEra; legacy?: boolean } = {}): string {
  const era = options.era ?? (options.legacy ? '418' : '580');
  if (!MOCK_ERAS.includes(era)) {
    throw new Error(`unknown mock driver era ${JSON.stringify(era)} (expected one of ${MOCK_ERAS.join(', ')})`);
  }
  const path =
    era === '580'
      ? join(dirname(bindingPath()), 'mock', 'libnvidia-ml.so.1')
      : join(dirname(bindingPath()), 'mock-eras', `libnvidia-ml-${era}.so.1`);
  if (!existsSync(path)) {
    throw new Error(`vramguard mock NVML not found at ${path}: rebuild the package (npm install / npm run prebuild)`);
  }
  return path;
}

/** The era a scenario file names (its "era" key), for picking the mock library that serves it. */
export function scenarioEra(scenarioPath: string): MockEra | undefined {
  try {
    const era = (JSON.parse(readFileSync(scenarioPath, 'utf8')) as { era?: unknown }).era;
    return typeof era === 'string' && (MOCK_ERAS as readonly string[]).includes(era) ? (era as MockEra) : undefined;
  } catch {
    return undefined; // unreadable or invalid: the mock itself reports why when NVML starts
  }
}
