// The node-wide lock: flock(2) on one shared file. The kernel drops a flock when the last descriptor of
// its open file goes, so a holder that crashes or is SIGKILLed releases it at once (no lease, no stale
// pid file to judge). Node opens files close-on-exec, so a child we spawn never inherits it.
//
// flock is taken without blocking (LOCK_EX | LOCK_NB, native/file_lock.cc) and retried with a short,
// jittered backoff, so waiting never blocks the event loop; the lock is held only for a few file reads
// and one write. Callers inside this process queue on a promise chain first, so they do not spin
// against each other.
import { closeSync, constants, fchmodSync, fstatSync, openSync, statSync } from 'node:fs';

import { NodeLedgerError, NodeLockTimeoutError } from '../errors';
import { binding } from '../nvml';

const delay = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export class NodeLock {
  private fd: number | null = null;
  private queue: Promise<void> = Promise.resolve();
  private closed = false;

  constructor(readonly path: string) {}

  /** Runs fn holding the node-wide lock; rejects with NodeLockTimeoutError past timeoutMs. */
  async withLock<T>(timeoutMs: number, fn: () => T | Promise<T>): Promise<T> {
    const previous = this.queue;
    let done!: () => void;
    this.queue = new Promise<void>((resolve) => (done = resolve));
    try {
      await previous;
      if (this.closed) throw new NodeLedgerError(this.path, 'lock closed');
      const fd = await this.acquire(timeoutMs);
      try {
        return await fn();
      } finally {
        binding().unlockFile(fd);
      }
    } finally {
      done();
    }
  }

  /** Closes the descriptor (which drops the lock if held). */
  close(): void {
    this.closed = true;
    if (this.fd !== null) closeSync(this.fd);
    this.fd = null;
  }

  private open(): number {
    if (this.fd !== null) return this.fd;
    // O_RDONLY is enough for flock; O_CREAT so the first participant makes it. Created 0644, so only its
    // creator could truncate it, and nobody needs to write it. O_NOFOLLOW and O_NONBLOCK: a link or a
    // FIFO planted under the name fails or is refused below instead of redirecting or blocking us.
    let fd: number;
    try {
      fd = openSync(this.path, constants.O_RDONLY | constants.O_CREAT | constants.O_NOFOLLOW | constants.O_NONBLOCK, 0o644);
    } catch (error) {
      throw new NodeLedgerError(this.path, `cannot open the lock file: ${(error as Error).message}`);
    }
    const stat = fstatSync(fd);
    if (!stat.isFile()) {
      closeSync(fd);
      throw new NodeLedgerError(this.path, 'lock file is not a regular file');
    }
    if (stat.uid === process.getuid?.()) fchmodSync(fd, 0o644);
    this.fd = fd;
    return fd;
  }

  /** True when our descriptor still names the file at path (nobody removed and recreated it). */
  private current(fd: number): boolean {
    try {
      const here = fstatSync(fd);
      const there = statSync(this.path);
      return here.ino === there.ino && here.dev === there.dev;
    } catch {
      return false;
    }
  }

  private async acquire(timeoutMs: number): Promise<number> {
    const started = performance.now();
    let wait = 1;
    for (;;) {
      const fd = this.open();
      if (binding().tryLockFile(fd)) {
        // A lock on a file that was unlinked excludes nobody who opens the new one: start again.
        if (this.current(fd)) return fd;
        binding().unlockFile(fd);
        closeSync(fd);
        this.fd = null;
        continue;
      }
      const waited = performance.now() - started;
      if (waited >= timeoutMs) throw new NodeLockTimeoutError(this.path, waited);
      await delay(Math.min(wait * (0.5 + Math.random()), timeoutMs - waited));
      wait = Math.min(wait * 2, 8);
    }
  }
}
