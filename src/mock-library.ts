// Where vramguard's mock libnvidia-ml.so.1 lies: beside the loaded addon. Used by the CLI's --mock and
// by vramguard/testing; production code takes it from here, never from the test kit.
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';

import { bindingPath } from './nvml';

/**
 * Path of the mock libnvidia-ml.so.1 built beside the loaded addon. `legacy`: the variant that does not
 * export the versioned entry points at all (an old driver), built as mock-legacy/libnvidia-ml-legacy.so.1.
 */
export function mockLibraryPath(options: { legacy?: boolean } = {}): string {
  const path = options.legacy
    ? join(dirname(bindingPath()), 'mock-legacy', 'libnvidia-ml-legacy.so.1')
    : join(dirname(bindingPath()), 'mock', 'libnvidia-ml.so.1');
  if (!existsSync(path)) {
    throw new Error(`vramguard mock NVML not found at ${path}: rebuild the package (npm install / npm run prebuild)`);
  }
  return path;
}
