import { defineConfig } from 'vitest/config';

// Native addons crash in worker pools: every test file runs in its own forked process.
// test/global-processes.ts fails the run when a test leaves a process behind.
export default defineConfig({
  test: {
    pool: 'forks',
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/global-processes.ts'],
    // Limits, not waits (tests wait for conditions): a shared two-core runner can be ten times slower.
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
