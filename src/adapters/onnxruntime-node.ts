// vramguard/onnxruntime-node: an onnxruntime-node InferenceSession as a guard session. It is admitted
// before it is created, evicted with session.release() (the only way it gives memory back: its arena
// keeps its peak until then) and created again on its next use. With `measure`, what the session holds
// is read after each creation and again after its first use (the arena grows at the first run).
import { statSync } from 'node:fs';

import type { InferenceSession } from 'onnxruntime-node';

import { InvalidOptionError, SessionEvictedError } from '../errors';
import type { Session, SessionOptions, VramGuard } from '../guard';
import { type ByteSize, parseBytes } from '../units';
import { admittedLoad, bookGrowth, resizedReload } from './admitted-load';
import { importPeer } from '../esm-import';

type OnnxRuntime = typeof import('onnxruntime-node');

export interface GuardedInferenceSessionOptions extends Pick<SessionOptions, 'pinned' | 'priority' | 'idleTtl'> {
  /** The session's id in the guard. */
  id: string;
  /** A model path or its bytes, as InferenceSession.create() takes them. */
  model: string | Uint8Array;
  /** onnxruntime's session options (execution providers, threads, arena...). */
  sessionOptions?: InferenceSession.SessionOptions;
  /**
   * What to admit before the session exists. Default: the model's size (its weights, which the
   * session holds once created); give more for activations and an arena that grows at run time.
   */
  bytes?: ByteSize;
  /**
   * Reads what the session holds (say, this process's VRAM by NVML before and after). Called once
   * created (resolves to the bytes to commit; by default the admitted bytes are committed) and again
   * after the first use since (the arena's growth at the first run is booked through the guard's
   * resize; a growth the guard refuses releases the session, which is created again on its next use).
   * An error it throws after a use rejects that use.
   */
  measure?: (session: InferenceSession) => number | Promise<number>;
}

/** The size of a model given as a path or bytes. */
function modelBytes(model: string | Uint8Array): number {
  if (typeof model === 'string') {
    try {
      return statSync(model).size;
    } catch (error) {
      throw new InvalidOptionError('model', `cannot read ${model}: ${(error as Error).message}`);
    }
  }
  if (model instanceof Uint8Array) return model.byteLength;
  throw new InvalidOptionError('model', `expected a path or a Uint8Array, got ${typeof model}`);
}

/** Creates an InferenceSession under the guard: admitted, committed, evicted by release(). */
export async function createGuardedInferenceSession(
  guard: VramGuard,
  options: GuardedInferenceSessionOptions,
): Promise<GuardedInferenceSession> {
  if (!guard || typeof guard.admit !== 'function') throw new InvalidOptionError('guard', 'expected a VramGuard');
  if (!options || typeof options.id !== 'string' || options.id.length === 0) {
    throw new InvalidOptionError('id', 'expected a non-empty string');
  }
  if (options.measure !== undefined && typeof options.measure !== 'function') {
    throw new InvalidOptionError('measure', `${options.id}: expected a function`);
  }
  const bytes = options.bytes === undefined ? modelBytes(options.model) : parseBytes(options.bytes, 'bytes');
  const ort = await importPeer<OnnxRuntime>('onnxruntime-node', 'vramguard/onnxruntime-node');
  const guarded = new GuardedInferenceSession(guard, ort, options, bytes);
  await guarded.firstLoad();
  return guarded;
}

export class GuardedInferenceSession {
  readonly id: string;
  /** Admitted before the first creation; measured (when `measure` is given) after each. */
  readonly figures: { estimatedBytes: number; measuredBytes: number };
  private current: InferenceSession | null = null;
  private sessionRef: Session | undefined;
  /** The first use since the last creation is still to be measured. */
  private useToMeasure = false;

  constructor(
    readonly guard: VramGuard,
    private readonly ort: OnnxRuntime,
    private readonly options: GuardedInferenceSessionOptions,
    estimatedBytes: number,
  ) {
    this.id = options.id;
    this.figures = { estimatedBytes, measuredBytes: estimatedBytes };
  }

  /** The guard's session. */
  get session(): Session {
    if (!this.sessionRef) throw new SessionEvictedError(this.id);
    return this.sessionRef;
  }

  /** The live InferenceSession, or null while evicted. Use it inside use() only. */
  get inferenceSession(): InferenceSession | null {
    return this.current;
  }

  /**
   * Runs fn with the session created (again, through admission, if evicted) and marked busy. The first
   * use since a creation is measured (with `measure`) and its growth booked once the use is done.
   */
  async use<T>(fn: (session: InferenceSession) => T | Promise<T>): Promise<T> {
    let grownTo = 0;
    const result = await this.session.use(async () => {
      const session = this.current;
      if (!session) throw new SessionEvictedError(this.id);
      const value = await fn(session);
      if (this.useToMeasure && this.current === session) {
        this.useToMeasure = false;
        grownTo = await this.measured(session);
      }
      return value;
    });
    if (grownTo > 0) await bookGrowth(this.session, grownTo, () => this.unload());
    return result;
  }

  /** session.run() inside use(). */
  run(feeds: InferenceSession.FeedsType, runOptions?: InferenceSession.RunOptions): Promise<InferenceSession.ReturnType> {
    return this.use((session) => session.run(feeds, runOptions));
  }

  /** Releases the session now, through the guard (created again on next use). False if not loaded. */
  unload(): Promise<boolean> {
    return this.guard.sessions.unload(this.id);
  }

  /** Releases it and removes it from the guard. */
  async close(): Promise<void> {
    if (this.sessionRef) await this.guard.sessions.delete(this.id);
  }

  /** @internal */
  async firstLoad(): Promise<void> {
    const { pinned, priority, idleTtl } = this.options;
    this.sessionRef = await admittedLoad({
      guard: this.guard,
      id: this.id,
      estimatedBytes: this.figures.estimatedBytes,
      load: () => this.load(),
      commit: (reservation, bytes) =>
        reservation.commit({
          id: this.id,
          bytes,
          pinned,
          priority,
          idleTtl,
          dispose: () => this.release(),
          // A re-creation that measures differently resizes the session (the guard re-checks growth).
          load: () => resizedReload(this.session, () => this.load(), () => this.release()),
        }),
      dispose: () => this.release(),
    });
  }

  private async load(): Promise<number> {
    const { model, sessionOptions, measure } = this.options;
    const session = typeof model === 'string'
      ? await this.ort.InferenceSession.create(model, sessionOptions)
      : await this.ort.InferenceSession.create(model, sessionOptions);
    this.current = session;
    if (measure) {
      try {
        this.figures.measuredBytes = await this.measured(session);
      } catch (error) {
        await this.release();
        throw error;
      }
      this.useToMeasure = true;
    }
    return this.figures.measuredBytes;
  }

  /** What `measure` reads for the session, checked. */
  private async measured(session: InferenceSession): Promise<number> {
    const measured = await this.options.measure!(session);
    if (typeof measured !== 'number' || !Number.isFinite(measured) || measured < 0) {
      throw new InvalidOptionError('measure', `${this.id}: expected a byte count, got ${String(measured)}`);
    }
    return Math.round(measured);
  }

  private async release(): Promise<void> {
    const session = this.current;
    this.current = null;
    await session?.release();
  }
}
