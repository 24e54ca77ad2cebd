// Models served by another process (Ollama, llama.cpp's server in router mode, vLLM) as guard
// sessions: admitted before the server loads them, accounted at what the server or NVML says they
// hold once loaded, evicted through the server's own API, loaded again on their next use. The server
// may also drop a model on its own (an expired keep-alive, its own LRU): reconcile() finds those and
// takes them off the guard's books.
import { InvalidOptionError, SessionEvictedError } from '../../errors';
import type { Session, SessionOptions, VramGuard } from '../../guard';
import { type ByteSize, type Duration, parseBytes, parseDuration } from '../../units';
import { admittedLoad, resizedReload } from '../admitted-load';

/** What a model server must offer: its documented load, unload and listing endpoints. */
export interface ModelServerDriver {
  /** Names the server in errors and logs ('ollama', 'llama.cpp router', 'vllm'). */
  readonly name: string;
  /** The models the server holds now. */
  loaded(): Promise<Set<string>>;
  load(model: string): Promise<void>;
  unload(model: string): Promise<void>;
  /**
   * What the model holds once loaded (the server's own figure or NVML's for its processes), read
   * after `since` (ms since the epoch); null when nothing tells.
   */
  measure(model: string, since: number, guard: VramGuard): Promise<number | null>;
}

export interface RemoteModelServerOptions {
  guard: VramGuard;
  driver: ModelServerDriver;
  /** How often to compare the guard's books with the server's list; null: only on reconcile(). Default '5s'. */
  reconcileEvery?: Duration | null;
}

export type RemoteModelOptions = Pick<SessionOptions, 'pinned' | 'priority' | 'idleTtl'> & {
  /** The session's id; default the model's name. */
  id?: string;
  /** What to admit before the server loads it (the server's own estimate, or the model's size). */
  bytes: ByteSize;
};

export class RemoteModelServer {
  readonly guard: VramGuard;
  readonly driver: ModelServerDriver;
  private readonly entries = new Map<string, RemoteModel>();
  private readonly timer: NodeJS.Timeout | undefined;
  private reconciling: Promise<string[]> | null = null;

  constructor(options: RemoteModelServerOptions) {
    if (!options || typeof options.guard?.admit !== 'function') throw new InvalidOptionError('guard', 'expected a VramGuard');
    const d = options.driver;
    if (!d || !['loaded', 'load', 'unload', 'measure'].every((m) => typeof (d as unknown as Record<string, unknown>)[m] === 'function')) {
      throw new InvalidOptionError('driver', 'expected a ModelServerDriver (loaded, load, unload, measure)');
    }
    this.guard = options.guard;
    this.driver = d;
    const every = options.reconcileEvery === undefined ? 5000 : options.reconcileEvery === null ? null : parseDuration(options.reconcileEvery, 'reconcileEvery');
    if (every !== null) {
      if (every <= 0) throw new InvalidOptionError('reconcileEvery', `must be more than 0, got ${String(options.reconcileEvery)}`);
      this.timer = setInterval(() => void this.reconcile().catch(() => undefined), every);
      this.timer.unref();
    }
  }

  /**
   * Admits the model, has the server load it and registers it at the bytes measured once loaded; a
   * model the server holds already is registered as it is.
   */
  async add(model: string, options: RemoteModelOptions): Promise<RemoteModel> {
    if (typeof model !== 'string' || model.length === 0) throw new InvalidOptionError('model', 'expected a non-empty model name');
    const id = options.id ?? model;
    if (this.entries.has(id) || this.guard.sessions.has(id)) throw new InvalidOptionError('id', `a session named ${id} exists already`);
    const entry = new RemoteModel(this, id, model, parseBytes(options.bytes, 'bytes'));
    const { pinned, priority, idleTtl } = options;
    const lifecycle = { pinned, priority, idleTtl, dispose: () => entry.dispose(), load: () => resizedReload(entry.session, () => entry.load(), () => entry.dispose()) };
    if ((await this.driver.loaded()).has(model)) {
      // Already on the server (vLLM loads its model at start-up; another client loaded it): adopted
      // at what it holds, without admission, since its memory is in use already.
      const measured = await this.driver.measure(model, 0, this.guard);
      entry.figures.measuredBytes = measured ?? entry.figures.estimatedBytes;
      entry.attach(this.guard.sessions.register(id, { ...lifecycle, bytes: entry.figures.measuredBytes }));
    } else {
      entry.attach(
        await admittedLoad({
          guard: this.guard,
          id,
          estimatedBytes: entry.figures.estimatedBytes,
          load: () => entry.load(),
          commit: (reservation, bytes) => reservation.commit({ id, bytes, ...lifecycle }),
          dispose: () => entry.dispose(),
        }),
      );
    }
    this.entries.set(id, entry);
    return entry;
  }

  get models(): RemoteModel[] {
    return [...this.entries.values()];
  }

  /**
   * Takes off the guard's books the idle models the server no longer holds (it dropped them itself).
   * Resolves to their ids. Single flight.
   */
  reconcile(): Promise<string[]> {
    this.reconciling ??= this.reconcileNow().finally(() => {
      this.reconciling = null;
    });
    return this.reconciling;
  }

  /** Stops reconciling; removes the models from the guard, unloading them from the server unless `unload: false`. */
  async close(options: { unload?: boolean } = {}): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.reconciling?.catch(() => undefined);
    await Promise.all(this.models.map((m) => m.close(options)));
  }

  /** @internal */
  forget(id: string): void {
    this.entries.delete(id);
  }

  private async reconcileNow(): Promise<string[]> {
    const held = await this.driver.loaded();
    const dropped: string[] = [];
    for (const entry of this.models) {
      const session = this.guard.sessions.get(entry.id);
      if (!session || session.state !== 'loaded' || session.busy > 0 || held.has(entry.model)) continue;
      // Gone already: off the books without an unload call ('evict' event, reason 'external').
      if (await session.markEvicted()) dropped.push(entry.id);
    }
    return dropped;
  }
}

/** A model held by a model server, as a guard session. */
export class RemoteModel {
  readonly figures: { estimatedBytes: number; measuredBytes: number };
  private sessionRef: Session | undefined;

  constructor(
    readonly server: RemoteModelServer,
    readonly id: string,
    readonly model: string,
    estimatedBytes: number,
  ) {
    this.figures = { estimatedBytes, measuredBytes: estimatedBytes };
  }

  get session(): Session {
    if (!this.sessionRef) throw new SessionEvictedError(this.id);
    return this.sessionRef;
  }

  /**
   * Runs fn (your request to the server) with the model marked busy; an evicted model is loaded on the
   * server again first, through admission.
   */
  use<T>(fn: (model: string) => T | Promise<T>): Promise<T> {
    return this.session.use(() => fn(this.model));
  }

  /** Unloads it from the server now, through the guard. False if it was not loaded. */
  unload(): Promise<boolean> {
    return this.server.guard.sessions.unload(this.id);
  }

  /** Removes it from the guard; unloads it from the server unless `unload: false`. */
  async close(options: { unload?: boolean } = {}): Promise<void> {
    if (this.sessionRef) {
      // Left on the server: off the guard's books without the server's unload.
      if (options.unload === false) {
        await this.sessionRef.whenIdle();
        await this.sessionRef.markEvicted();
      }
      await this.server.guard.sessions.delete(this.id);
    }
    this.server.forget(this.id);
  }

  /** @internal */
  attach(session: Session): void {
    this.sessionRef = session;
  }

  /** @internal Loads on the server, then measures (a reload that measures differently resizes the session). */
  async load(): Promise<number> {
    await this.server.driver.load(this.model);
    const measured = await this.server.driver.measure(this.model, Date.now(), this.server.guard);
    this.figures.measuredBytes = measured ?? this.figures.estimatedBytes;
    return this.figures.measuredBytes;
  }

  /** @internal The guard's dispose: the server's unload. */
  async dispose(): Promise<void> {
    await this.server.driver.unload(this.model);
  }
}
