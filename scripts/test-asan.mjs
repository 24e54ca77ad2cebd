// The ASan/UBSan run CI makes: builds everything with the sanitizers (cmake-js, build-asan/), runs the
// native harness with LeakSanitizer on (the core without Node, so a leak report is ours alone), then
// the native-facing vitest files through the sanitized addon and mock, with libasan preloaded into Node.
// Node and V8 keep allocations alive until exit by design, so leak detection is off inside Node.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const out = join(root, 'build-asan', 'Debug');
const run = (command, args, env = {}) => {
  const result = spawnSync(command, args, { cwd: root, stdio: 'inherit', env: { ...process.env, ...env } });
  if (result.status !== 0) {
    console.error(`test-asan: ${command} ${args.join(' ')} failed (${result.signal ?? result.status})`);
    process.exit(1);
  }
};

run(process.execPath, [
  join(root, 'node_modules', 'cmake-js', 'bin', 'cmake-js'),
  'compile', '--out', 'build-asan', '--debug', '--CDVRAMGUARD_SANITIZE=ON',
]);

const ubsan = 'halt_on_error=1:print_stacktrace=1';
// --soak: the long fault-injection run only (npm run soak); CI (npm run test:asan) runs the short one.
const soak = process.argv.includes('--soak');
const scratch = mkdtempSync(join(tmpdir(), 'vramguard-asan-'));
try {
  const passes = soak ? '100000' : '10000';
  console.log(`== fault harness: ${passes} passes over 8 GPUs, random errors on every NVML function, ASan + LSan + UBSan`);
  run(join(out, 'fault_harness'), [join(out, 'mock', 'libnvidia-ml.so.1'), scratch, passes], {
    ASAN_OPTIONS: 'detect_leaks=1:abort_on_error=0:exitcode=23',
    UBSAN_OPTIONS: ubsan,
  });
  if (!soak) {
    console.log('== sampler harness under ASan + LeakSanitizer + UBSan');
    run(join(out, 'sampler_harness'), [join(out, 'mock', 'libnvidia-ml.so.1'), scratch], {
      ASAN_OPTIONS: 'detect_leaks=1:abort_on_error=0:exitcode=23',
      UBSAN_OPTIONS: ubsan,
    });
  }
} finally {
  rmSync(scratch, { recursive: true, force: true });
}
if (soak) process.exit(0);

console.log('== native-facing tests through the sanitized addon and mock');
const libasan = execFileSync('gcc', ['-print-file-name=libasan.so'], { encoding: 'utf8' }).trim();
run(process.execPath, [join(root, 'node_modules', 'vitest', 'vitest.mjs'), 'run', 'test/native'], {
  VRAMGUARD_BINDING: join(out, 'vramguard.node'),
  LD_PRELOAD: libasan,
  ASAN_OPTIONS: 'detect_leaks=0:abort_on_error=1:detect_odr_violation=0',
  UBSAN_OPTIONS: ubsan,
  // The teardown proof's rounds are several times slower under ASan: fewer of them here, the full count
  // runs in npm test on the plain build.
  VRAMGUARD_TEARDOWN_ROUNDS: process.env.VRAMGUARD_TEARDOWN_ROUNDS ?? '25',
});
