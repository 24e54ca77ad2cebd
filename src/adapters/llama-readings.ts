// Readings of what a node-llama-cpp backend holds, taken around a load or a use: the change of the
// backend's VRAM use ('vram' accounting), or what the loaded resource reports ('ram'). Loads run one at
// a time (a load's figure must not include another's memory); a measured use runs beside loads, and
// its reading counts only when nothing else was measured while it ran.
import type { Llama } from 'node-llama-cpp';

import type { LlamaAccounting } from './node-llama-cpp';

export class BackendReadings {
  private loadQueue: Promise<unknown> = Promise.resolve();
  /** Loads and measured uses in flight, and how many have started: a reading is clean alone. */
  private measuring = 0;
  private measuringStarts = 0;

  constructor(
    private readonly llama: Llama,
    private readonly accounting: LlamaAccounting,
  ) {}

  /**
   * Runs a load alone (measurements of one load must not see another's memory), between two readings
   * of what the adapter accounts.
   */
  load<T>(load: () => Promise<T>, measureAfter: (resource: T) => number | null): Promise<{ resource: T; bytes: number | null }> {
    const run = async () => {
      this.measuring += 1;
      this.measuringStarts += 1;
      try {
        const before = this.accounting === 'vram' ? (await this.llama.getVramState()).used : 0;
        const resource = await load();
        if (this.accounting === 'ram') return { resource, bytes: measureAfter(resource) };
        return { resource, bytes: Math.max(0, (await this.llama.getVramState()).used - before) };
      } finally {
        this.measuring -= 1;
      }
    };
    const result = this.loadQueue.then(run, run);
    this.loadQueue = result.catch(() => undefined);
    return result;
  }

  /**
   * Runs a use between two readings of the backend's VRAM, without waiting for loads (a
   * long generation must not hold them up). `grownBytes` is null when the reading is not clean (a
   * load or another measured use overlapped it: try again on a later use) and undefined when the
   * backend cannot be read (no measuring for this load).
   */
  async use<T>(use: () => T | Promise<T>): Promise<{ result: T; grownBytes: number | null | undefined }> {
    const alone = this.measuring === 0;
    this.measuring += 1;
    const starts = (this.measuringStarts += 1);
    let before: number | undefined;
    try {
      try {
        before = (await this.llama.getVramState()).used;
      } catch {
        before = undefined;
      }
      const result = await use();
      if (before === undefined) return { result, grownBytes: undefined };
      let after: number;
      try {
        after = (await this.llama.getVramState()).used;
      } catch {
        return { result, grownBytes: undefined };
      }
      const clean = alone && this.measuringStarts === starts;
      return { result, grownBytes: clean ? Math.max(0, after - before) : null };
    } finally {
      this.measuring -= 1;
    }
  }
}
