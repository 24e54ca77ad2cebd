// vramguard/node-llama-cpp: node-llama-cpp models and contexts as guard sessions. A model is a session;
// each of its contexts is a session too, the model's child in the guard (a context's use is its
// model's; evicting a model disposes its contexts first). Loads are admitted on node-llama-cpp's own estimate (GGUF insights for the
// chosen GPU layers and context size) and committed at the bytes measured after the load; in 'vram'
// accounting a context's first evaluation after each load is measured too (compute buffers and pools
// grow then) and the growth booked through the guard. Idle contexts are the guard's first releaser (their KV cache is allocated up front: only dispose() frees
// it). An evicted model or context reloads on its next use.
import type {
  Llama,
  LlamaContext,
  LlamaContextOptions,
  LlamaModel,
  LlamaModelOptions,
} from 'node-llama-cpp';

import { InvalidOptionError, SessionEvictedError } from '../errors';
import type { Session, SessionOptions, VramGuard } from '../guard';
import { admittedLoad, bookGrowth, resizedReload } from './admitted-load';
import { type FileEstimates, GgufEstimates } from './gguf-estimates';

/** What a guarded model or context reports to the guard. */
export type LlamaAccounting = 'vram' | 'ram';

export interface LlamaGuardOptions {
  guard: VramGuard;
  /** From node-llama-cpp's getLlama(). */
  llama: Llama;
  /**
   * 'vram' (default with a GPU backend): estimates' gpuVram, measured as the change of the backend's
   * VRAM use over a load. 'ram' (default when llama.gpu is false): estimates' cpuRam, measured as the
   * model's size as loaded; for a CPU-only process whose sessions the guard accounts on its ledger.
   */
  accounting?: LlamaAccounting;
  /** Register the idle-context releaser (called at the soft limit before any eviction). Default true. */
  releaseIdleContexts?: boolean;
  /** The releaser's priority among the guard's releasers. Default 0. */
  releaserPriority?: number;
  /**
   * In 'vram' accounting, measure each context's first evaluation after a load (the backend's VRAM
   * change over that use) and book what it grew through the guard's resize. Default true.
   */
  measureFirstEvaluation?: boolean;
}

/** How the guard treats one session (see SessionOptions). */
export type SessionPolicy = Pick<SessionOptions, 'pinned' | 'priority' | 'idleTtl'>;

export type GuardedModelOptions = LlamaModelOptions & SessionPolicy & { id: string };
export type GuardedContextOptions = LlamaContextOptions & SessionPolicy & { id?: string };

/** A model's or context's figures: what was admitted, what the last load measured. */
export interface LoadFigures {
  estimatedBytes: number;
  measuredBytes: number;
}

/** A context's figures: also what its first evaluation after the last load added (0 until measured). */
export interface ContextFigures extends LoadFigures {
  evaluationBytes: number;
}

export class LlamaGuard {
  readonly guard: VramGuard;
  readonly llama: Llama;
  readonly accounting: LlamaAccounting;
  private readonly models = new Map<string, GuardedLlamaModel>();
  private readonly removeReleaser: (() => void) | undefined;
  private loadQueue: Promise<unknown> = Promise.resolve();
  private readonly estimates: GgufEstimates;
  /** Loads and measured evaluations in flight, and how many have started: a reading is clean alone. */
  private measuring = 0;
  private measuringStarts = 0;
  /** @internal */
  readonly measuresEvaluations: boolean;

  constructor(options: LlamaGuardOptions) {
    if (!options || typeof options.guard?.admit !== 'function') throw new InvalidOptionError('guard', 'expected a VramGuard');
    if (!options.llama || typeof options.llama.loadModel !== 'function') {
      throw new InvalidOptionError('llama', "expected a Llama from node-llama-cpp's getLlama()");
    }
    const accounting = options.accounting ?? (options.llama.gpu === false ? 'ram' : 'vram');
    if (accounting !== 'vram' && accounting !== 'ram') {
      throw new InvalidOptionError('accounting', `expected 'vram' or 'ram', got ${JSON.stringify(accounting)}`);
    }
    this.guard = options.guard;
    this.llama = options.llama;
    this.accounting = accounting;
    this.estimates = new GgufEstimates(options.llama);
    this.measuresEvaluations = accounting === 'vram' && (options.measureFirstEvaluation ?? true);
    if (options.releaseIdleContexts ?? true) {
      this.removeReleaser = this.guard.addReleaser('node-llama-cpp idle contexts', () => this.releaseIdleContexts(), {
        priority: options.releaserPriority ?? 0,
      });
    }
  }

  /** Admits the model on its estimate, loads it and registers it as a session. */
  async loadModel(options: GuardedModelOptions): Promise<GuardedLlamaModel> {
    if (!options || typeof options.id !== 'string' || options.id.length === 0) {
      throw new InvalidOptionError('id', 'loadModel() needs a non-empty id');
    }
    if (this.models.has(options.id) || this.guard.sessions.has(options.id)) {
      throw new InvalidOptionError('id', `a session named ${options.id} exists already`);
    }
    const model = new GuardedLlamaModel(this, options, await this.estimates.forFile(options.modelPath));
    await model.firstLoad();
    this.models.set(options.id, model);
    return model;
  }

  /** The guarded models by id. */
  get loadedModels(): GuardedLlamaModel[] {
    return [...this.models.values()];
  }

  /**
   * The releaser: disposes every idle, unpinned, loaded context (they reload on their next use).
   * Resolves to the bytes it freed by the sessions' accounts.
   */
  async releaseIdleContexts(): Promise<number> {
    let freed = 0;
    const idle = this.loadedModels
      .flatMap((m) => m.contexts)
      .filter((c) => c.session.state === 'loaded' && c.session.busy === 0 && !c.session.pinned)
      .sort((a, b) => a.session.lastUsedAt - b.session.lastUsedAt);
    for (const context of idle) {
      if (await context.unload()) freed += context.session.bytes;
    }
    return freed;
  }

  /** Unregisters the releaser and removes every model (and its contexts) from the guard, disposing them. */
  async close(): Promise<void> {
    this.removeReleaser?.();
    await Promise.all(this.loadedModels.map((m) => m.close()));
  }

  /** @internal */
  forget(id: string): void {
    this.models.delete(id);
  }

  /**
   * @internal Runs a load alone (measurements of one load must not see another's memory), between two
   * readings of what this adapter accounts.
   */
  measuredLoad<T>(load: () => Promise<T>, measureAfter: (resource: T) => number | null): Promise<{ resource: T; bytes: number | null }> {
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
   * @internal Runs a use between two readings of the backend's VRAM, without waiting for loads (a
   * long generation must not hold them up). `grownBytes` is null when the reading is not clean (a
   * load or another measured use overlapped it: try again on a later use) and undefined when the
   * backend cannot be read (no measuring for this load).
   */
  async measuredUse<T>(use: () => T | Promise<T>): Promise<{ result: T; grownBytes: number | null | undefined }> {
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
    const { resource, bytes } = await this.owner.measuredLoad(
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
      const measured = await this.parent.owner.measuredUse(() => fn(context));
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
    const { resource, bytes } = await this.parent.owner.measuredLoad(() => model.createContext(options), () => null);
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
