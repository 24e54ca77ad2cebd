// `require('vramguard')` (and `import`) loads no metrics stack; guard.metrics() loads it on first use,
// in both builds (dist/cjs and dist/esm, made by scripts/build-ts.mjs before the tests).
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';

import { expect, it } from 'vitest';

const root = join(__dirname, '..', '..');
const METRICS_STACK = /node_modules\/(prom-client|tdigest|bintrees|@opentelemetry)\//;

function run(args: string[]): { before: string[]; after: string[]; scraped: boolean } {
  const out = execFileSync(process.execPath, args, {
    cwd: root,
    encoding: 'utf8',
    env: { ...process.env, VRAMGUARD_NVML_LIBRARY: '/nonexistent/libnvidia-ml.so.1' },
  });
  return JSON.parse(out) as { before: string[]; after: string[]; scraped: boolean };
}

const check = `
  const loaded = () => Object.keys(require.cache).filter((k) => ${METRICS_STACK}.test(k)).map((k) => k.replace(/.*node_modules\\//, ''));
  const sampler = new vramguard.Sampler({ interval: '1s' });
  const guard = new vramguard.VramGuard({ quota: { hard: '8GiB' } });
  guard.status(); guard.health();
  const before = loaded();
  const { Registry } = require('prom-client');
  const registry = new Registry();
  guard.metrics(registry);
  registry.metrics().then((text) => {
    console.log(JSON.stringify({ before, after: loaded(), scraped: text.includes('vramguard_guard_quota_bytes') }));
    return guard.close();
  });
`;

it('CommonJS: require() loads no prom-client until guard.metrics()', () => {
  const result = run(['-e', `const vramguard = require('./dist/cjs');${check}`]);
  expect(result.before).toEqual([]);
  expect(result.after.some((m) => m.startsWith('prom-client/'))).toBe(true);
  expect(result.scraped).toBe(true);
});

it('ESM: import loads no prom-client until guard.metrics()', () => {
  const source =
    `import { createRequire } from 'node:module'; const require = createRequire(${JSON.stringify(join(root, 'package.json'))});` +
    `const vramguard = await import(${JSON.stringify(join(root, 'dist', 'esm', 'index.js'))});${check}`;
  const result = run(['--input-type=module', '-e', source]);
  expect(result.before).toEqual([]);
  expect(result.scraped).toBe(true);
});
