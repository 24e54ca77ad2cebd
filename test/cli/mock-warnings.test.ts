// The mock's warnings on the CLI's stderr, once each, in the order the mock reported them. The source is
// injected here; on the CLI it is nvml.mockWarnings() (the addon's read of vramguardMockWarnings()).
import { expect, it } from 'vitest';

import { MockWarnings } from '../../src/cli/mock-warnings';
import { infoDocument } from '../../src/cli/info';
import type { NvmlProbe } from '../../src/nvml';

it('prints each warning once, as the mock keeps reporting it, and remembers them all', () => {
  let current: string[] | null = null;
  const lines: string[] = [];
  const warnings = new MockWarnings('serve', () => current, (line) => lines.push(line));
  expect(warnings.report()).toEqual([]); // an addon that cannot read them: nothing, no error
  current = ['control /tmp/c:3: invalid JSON: expected a value'];
  expect(warnings.report()).toEqual(['control /tmp/c:3: invalid JSON: expected a value']);
  current = [...current, 'control /tmp/c:4: op refused: no device 9'];
  expect(warnings.report()).toEqual(['control /tmp/c:4: op refused: no device 9']);
  expect(warnings.report()).toEqual([]);
  expect(lines).toEqual([
    'vramguard serve: mock NVML: control /tmp/c:3: invalid JSON: expected a value\n',
    'vramguard serve: mock NVML: control /tmp/c:4: op refused: no device 9\n',
  ]);
  // The mock keeps only its latest warnings: one that scrolled out is still among those seen.
  current = ['control /tmp/c:4: op refused: no device 9'];
  expect(warnings.report()).toEqual([]);
  expect(warnings.all()).toHaveLength(2);
});

it('info --json lists them', () => {
  const probe = { libraryPath: '/x', isMock: true, system: {}, symbols: {}, capabilities: {} } as unknown as NvmlProbe;
  expect(infoDocument(probe, [], ['control /tmp/c:3: op refused: no device 9']).mock_warnings).toEqual([
    'control /tmp/c:3: op refused: no device 9',
  ]);
  expect(infoDocument(probe, []).mock_warnings).toEqual([]);
});
