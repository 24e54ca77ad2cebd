// The published types: @internal members stay out of the .d.ts files, and a TypeScript consumer
// compiles against them with full library checks (CommonJS, node10 resolution).
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, beforeAll, expect, it } from 'vitest';

const root = join(__dirname, '..', '..');
const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');
let project: string;

beforeAll(() => {
  project = mkdtempSync(join(tmpdir(), 'vramguard-types-'));
  mkdirSync(join(project, 'node_modules'));
  symlinkSync(root, join(project, 'node_modules', 'vramguard'), 'dir');
});
afterAll(() => rmSync(project, { recursive: true, force: true }));

it('leaves @internal members out of the declarations', () => {
  const read = (file: string) => readFileSync(join(root, 'dist', 'cjs', file), 'utf8');
  expect(read('guard/guard.d.ts')).not.toMatch(/observeSamples/);
  expect(read('guard/sessions.d.ts')).not.toMatch(/takeDispose|runLoad|transition/);
  expect(read('sampler.d.ts')).not.toMatch(/syncWatermarks|removeWatermark|toNative/);
  expect(read('nvml.d.ts')).not.toMatch(/startFailure/);
});

const consumer = `
import { Sampler, VramGuard, VramQuotaError, TimeoutError, type GuardStatus, type Reservation } from 'vramguard';
const sampler: Sampler = new Sampler({ interval: '1s', devices: ['02:00.0'] });
const guard = new VramGuard({ quota: { soft: '12GiB', hard: '14GiB' } });
async function load(): Promise<GuardStatus> {
  try {
    const reservation: Reservation = await guard.admit('2GiB', { id: 'm' });
    reservation.commit({ dispose: () => undefined });
  } catch (error) {
    if (error instanceof VramQuotaError) console.log(error.neededBytes, error.eviction.blocked);
    if (error instanceof TimeoutError) console.log(error.code, error.timeoutMs);
  }
  guard.installShutdownHandlers({ onShutdown: () => sampler.close() });
  return guard.status();
}
void load;
`;

// One setting (a full library check costs tens of seconds on a busy 2-core machine).
for (const [name, options] of [['commonjs, node10 resolution', { module: 'commonjs', moduleResolution: 'node10' }]] as const) {
  it(`compiles a consumer (${name}) with library checks on`, () => {
    const dir = join(project, name.replace(/\W+/g, '-'));
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'consumer.ts'), consumer);
    writeFileSync(
      join(dir, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          ...options,
          target: 'ES2022',
          strict: true,
          noEmit: true,
          skipLibCheck: false,
          types: ['node'],
          typeRoots: [join(root, 'node_modules', '@types')],
        },
        files: ['consumer.ts'],
      }),
    );
    writeFileSync(join(dir, 'package.json'), '{ "type": "commonjs" }\n');
    symlinkSync(join(project, 'node_modules'), join(dir, 'node_modules'), 'dir');
    execFileSync(process.execPath, [tsc, '-p', join(dir, 'tsconfig.json')], { cwd: dir, encoding: 'utf8' });
  }, 300_000);
}
