// A context of a guarded node-llama-cpp model: a child session of its model's, admitted on the GGUF
// estimate for its size, created again (with the size it first got) on its next use after an
// eviction. In 'vram' accounting its first evaluation after each load is measured and booked.
import type { LlamaContext, LlamaContextOptions } from 'node-llama-cpp';

import { SessionEvictedError } from '../errors';
import type { Session } from '../guard';
import { admittedLoad, bookGrowth, resizedReload } from './admitted-load';
import type { GuardedLlamaModel } from './llama-model';
import type { ContextFigures, GuardedContextOptions, SessionPolicy } from './node-llama-cpp';

/** A context of a guarded model: use() it; idle, it is the first thing the guard releases. */
export class GuardedLlamaContext {
  readonly figures: ContextFigures = { estimatedBytes: 0, measuredBytes: 0, evaluationBytes: 0 };
  private current: LlamaContext | null = null;
  /** The first evaluation since the last load is still to be measured. */
  private evaluationToMeasure = false;
  private sessionRef: Session | undefined;
  private readonly policy: SessionPolicy;
  private readonly contextOptions: LlamaContextOptions;
  /** The size node-llama-cpp chose the first time (for 'auto'): reloads create the same. */
  private chosenSize: number | undefined;

  constructor(
    readonly parent: GuardedLlamaModel,
    readonly id: string,
    options: GuardedContextOptions,
  ) {
    const { id: _id, pinned, priority, idleTtl, ...contextOptions } = options;
    this.policy = { pinned, priority, idleTtl };
    this.contextOptions = contextOptions;
  }

  get session(): Session {
    if (!this.sessionRef) throw new SessionEvictedError(this.id);
    return this.sessionRef;
  }

  /** The live context, or null while evicted. Use it inside use() only. */
  get context(): LlamaContext | null {
    return this.current;
  }

  /**
   * Runs fn with the context loaded and busy, its model loaded and busy too (the guard makes a child's
   * use its parent's): either is reloaded through admission first if it was evicted. In 'vram'
   * accounting the first use after a load is measured, and what the context grew is booked with the
   * guard once the use is done (a growth the guard refuses unloads the context; fn's result stands).
   */
  async use<T>(fn: (context: LlamaContext) => T | Promise<T>): Promise<T> {
    let grownBytes = 0;
    const result = await this.session.use(async () => {
      const context = this.current;
      if (!context) throw new SessionEvictedError(this.id);
      if (!this.evaluationToMeasure) return fn(context);
      const measured = await this.parent.owner.readings.use(() => fn(context));
      if (measured.grownBytes !== null && this.current === context) {
        this.evaluationToMeasure = false;
        grownBytes = measured.grownBytes ?? 0;
      }
      return measured.result;
    });
    if (grownBytes > 0) {
      this.figures.evaluationBytes = grownBytes;
      await bookGrowth(this.session, this.session.bytes + grownBytes, () => this.unload());
    }
    return result;
  }

  /** Disposes the context now through the guard (it reloads on next use). False if it was not loaded. */
  async unload(): Promise<boolean> {
    if (!this.sessionRef) return false;
    return this.parent.owner.guard.sessions.unload(this.id);
  }

  /** Removes the context from the guard, disposing it. */
  async close(): Promise<void> {
    if (this.sessionRef) await this.parent.owner.guard.sessions.delete(this.id);
    this.parent.forgetContext(this);
  }

  /** @internal Called inside the parent's use. */
  async firstLoad(): Promise<void> {
    const estimate = await this.estimate();
    const owner = this.parent.owner;
    this.figures.estimatedBytes = owner.accounting === 'vram' ? estimate.gpuVram : estimate.cpuRam;
    this.sessionRef = await admittedLoad({
      guard: owner.guard,
      id: this.id,
      estimatedBytes: this.figures.estimatedBytes,
      load: () => this.load(),
      commit: (reservation, bytes) =>
        reservation.commit({
          id: this.id,
          bytes,
          ...this.policy,
          parent: this.parent.session,
          dispose: () => this.dispose(),
          load: () => resizedReload(this.session, () => this.load(), () => this.dispose()),
        }),
      dispose: () => this.dispose(),
    });
  }

  private estimate() {
    const { contextSize, batchSize, sequences, flashAttention, swaFullCache } = this.contextOptions;
    const size = typeof contextSize === 'number' ? contextSize : (this.parent.estimates.insights.trainContextSize ?? 4096);
    return this.parent.estimates.context({
      contextSize: size,
      modelGpuLayers: this.parent.gpuLayers,
      batchSize,
      sequences,
      flashAttention,
      swaFullCache,
    });
  }

  private async load(): Promise<number> {
    const model = this.parent.model;
    if (!model) throw new SessionEvictedError(this.parent.id); // reloads go through use(): the model is loaded
    // A reload creates the context it had (the size node-llama-cpp chose for 'auto' the first time).
    const options = this.chosenSize === undefined ? this.contextOptions : { ...this.contextOptions, contextSize: this.chosenSize };
    const { resource, bytes } = await this.parent.owner.readings.load(() => model.createContext(options), () => null);
    this.current = resource;
    this.chosenSize = resource.contextSize;
    this.evaluationToMeasure = this.parent.owner.measuresEvaluations;
    this.figures.evaluationBytes = 0;
    // In 'ram' accounting no reading exists for a context's buffers: its estimate stands in.
    this.figures.measuredBytes = bytes ?? this.figures.estimatedBytes;
    return this.figures.measuredBytes;
  }

  private async dispose(): Promise<void> {
    const context = this.current;
    this.current = null;
    await context?.dispose();
  }
}
