// vramguard/node-llama-cpp: node-llama-cpp models and contexts as guard sessions. A model is a session;
// each of its contexts is a session too, the model's child in the guard (a context's use is its
// model's; evicting a model disposes its contexts first). Loads are admitted on node-llama-cpp's own
// estimate (GGUF insights for the chosen GPU layers and context size) and committed at the bytes
// measured after the load; in 'vram' accounting a context's first evaluation after each load is
// measured too (compute buffers and pools grow then) and the growth booked through the guard. Idle
// contexts are the guard's first releaser (their KV cache is allocated up front: only dispose() frees
// it). An evicted model or context reloads on its next use.
//
// This file: the options, the figures and LlamaGuard; the model and the context are in llama-model.ts
// and llama-context.ts, the backend's readings in llama-readings.ts.
import type { Llama, LlamaContextOptions, LlamaModelOptions } from 'node-llama-cpp';

import { InvalidOptionError } from '../errors';
import type { SessionOptions, VramGuard } from '../guard';
import { GgufEstimates } from './gguf-estimates';
import { GuardedLlamaModel } from './llama-model';
import { BackendReadings } from './llama-readings';

export { GuardedLlamaContext } from './llama-context';
export { GuardedLlamaModel } from './llama-model';

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
  private readonly estimates: GgufEstimates;
  /** @internal The backend's readings around loads and first evaluations. */
  readonly readings: BackendReadings;
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
    this.readings = new BackendReadings(options.llama, accounting);
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
}
