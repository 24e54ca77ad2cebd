// A node-llama-cpp model under the guard (vramguard/node-llama-cpp): one guard session, admitted on
// the GGUF estimate, committed at what its load measured, reloaded through admission after an eviction
// with the GPU layers its first load chose. Its contexts are its children in the guard.
import type { LlamaModel, LlamaModelOptions } from 'node-llama-cpp';

import { InvalidOptionError, SessionEvictedError } from '../errors';
import type { Session } from '../guard';
import { admittedLoad, resizedReload } from './admitted-load';
import type { FileEstimates } from './gguf-estimates';
import { GuardedLlamaContext } from './llama-context';
import type { GuardedContextOptions, GuardedModelOptions, LlamaGuard, LoadFigures, SessionPolicy } from './node-llama-cpp';

/** A node-llama-cpp model under the guard: use() it; it is evicted when idle or under pressure. */
export class GuardedLlamaModel {
  readonly id: string;
  readonly figures: LoadFigures = { estimatedBytes: 0, measuredBytes: 0 };
  private current: LlamaModel | null = null;
  private sessionRef: Session | undefined;
  /** The contexts' adapters (the guard holds their sessions as this model's children). */
  private readonly children = new Set<GuardedLlamaContext>();
  private contextCount = 0;
  private readonly loadOptions: LlamaModelOptions;
  private readonly policy: SessionPolicy;
  /** What the first load chose for 'auto' or a range: reloads load the same. */
  private chosenGpuLayers: number | undefined;

  constructor(
    readonly owner: LlamaGuard,
    options: GuardedModelOptions,
    readonly estimates: FileEstimates,
  ) {
    const { id, pinned, priority, idleTtl, ...loadOptions } = options;
    this.id = id;
    this.policy = { pinned, priority, idleTtl };
    this.loadOptions = loadOptions;
  }

  /** The guard's session for this model. */
  get session(): Session {
    if (!this.sessionRef) throw new SessionEvictedError(this.id);
    return this.sessionRef;
  }

  /** The loaded model, or null while evicted. Use it inside use() only: outside, it may go any time. */
  get model(): LlamaModel | null {
    return this.current;
  }

  /** This model's contexts (loaded or evicted). */
  get contexts(): GuardedLlamaContext[] {
    return [...this.children];
  }

  /** GPU layers: as requested for a number; 'max' is every layer; otherwise what the last load chose. */
  get gpuLayers(): number {
    if (this.current) return this.current.gpuLayers;
    if (this.chosenGpuLayers !== undefined) return this.chosenGpuLayers;
    const requested = this.loadOptions.gpuLayers;
    if (this.owner.llama.gpu === false) return 0;
    if (typeof requested === 'number') return requested;
    return this.estimates.insights.totalLayers; // 'max', 'auto' or a range: the estimate's upper bound
  }

  /** @internal */
  async firstLoad(): Promise<void> {
    const estimate = await this.estimates.model({
      gpuLayers: this.gpuLayers,
      useMmap: typeof this.loadOptions.useMmap === 'boolean' ? this.loadOptions.useMmap : undefined,
      gpuSupportsMmap: this.owner.llama.gpuSupportsMmap,
    });
    this.figures.estimatedBytes = this.owner.accounting === 'vram' ? estimate.gpuVram : estimate.cpuRam;
    this.sessionRef = await admittedLoad({
      guard: this.owner.guard,
      id: this.id,
      estimatedBytes: this.estimates.admissionBytes(this.loadOptions, this.figures.estimatedBytes),
      load: () => this.load(),
      commit: (reservation, bytes) =>
        reservation.commit({ id: this.id, bytes, ...this.policy, dispose: () => this.dispose(), load: () => this.reload() }),
      dispose: () => this.dispose(),
    });
  }

  /** Runs fn with the model loaded (reloading it through admission if evicted) and marked busy. */
  use<T>(fn: (model: LlamaModel) => T | Promise<T>): Promise<T> {
    return this.session.use(() => {
      if (!this.current) throw new SessionEvictedError(this.id);
      return fn(this.current);
    });
  }

  /** Creates a context on this model, admitted on its estimate, as a child session. */
  async createContext(options: GuardedContextOptions = {}): Promise<GuardedLlamaContext> {
    this.contextCount += 1;
    const id = options.id ?? `${this.id}#ctx${this.contextCount}`;
    if (this.owner.guard.sessions.has(id)) throw new InvalidOptionError('id', `a session named ${id} exists already`);
    const context = new GuardedLlamaContext(this, id, options);
    // The model stays busy (never evicted) while its context is admitted and created.
    await this.use(() => context.firstLoad());
    this.children.add(context);
    return context;
  }

  /** Evicts the model now (its contexts first), through the guard. Resolves false if it was not loaded. */
  unload(): Promise<boolean> {
    return this.owner.guard.sessions.unload(this.id);
  }

  /** Removes the model and its contexts from the guard, disposing them. */
  async close(): Promise<void> {
    await Promise.all(this.contexts.map((c) => c.close()));
    if (this.sessionRef) await this.owner.guard.sessions.delete(this.id);
    this.owner.forget(this.id);
  }

  /** @internal */
  forgetContext(context: GuardedLlamaContext): void {
    this.children.delete(context);
  }

  private async load(): Promise<number> {
    const options = this.chosenGpuLayers === undefined ? this.loadOptions : { ...this.loadOptions, gpuLayers: this.chosenGpuLayers };
    const { resource, bytes } = await this.owner.readings.load(
      () => this.owner.llama.loadModel(options),
      (model) => model.size,
    );
    this.current = resource;
    this.chosenGpuLayers = resource.gpuLayers;
    this.figures.measuredBytes = bytes ?? this.figures.estimatedBytes;
    if (bytes !== null) this.estimates.remember(this.loadOptions, bytes);
    return this.figures.measuredBytes;
  }

  /** The guard admitted the committed bytes; a reload that measures differently resizes the session. */
  private reload(): Promise<void> {
    return resizedReload(this.session, () => this.load(), () => this.dispose());
  }

  /** The guard disposed this model's contexts first (they are its children). */
  private async dispose(): Promise<void> {
    const model = this.current;
    this.current = null;
    await model?.dispose();
  }
}
