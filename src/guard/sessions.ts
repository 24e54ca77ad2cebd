// Model sessions the guard may evict: their bytes, how to dispose (and optionally reload) them, and
// their use. Idle TTL counts from the end of the last use; a session in use is never evicted. A session
// may depend on a parent (a context on its model): its use is its parent's use, and its parent's
// eviction disposes it first.
import { InvalidOptionError, SessionEvictedError } from '../errors';
import { type ByteSize, type Duration, parseBytes, parseDuration } from '../units';
import type { TimerHandle } from './clock';
import type { SessionKeepAliveOptions } from './demand/options';
import { fixedKeepAliveInfo, type SessionKeepAlive, type SessionKeepAliveInfo } from './demand/session-keepalive';

export interface SessionOptions {
  /** What the session holds on the GPU (an estimate; NVML's figures are what count). */
  bytes: ByteSize;
  /** Frees the session's memory. Called once per load, time-bounded. */
  dispose: () => unknown;
  /** Loads it again after an eviction, through admission, on its next use. */
  load?: () => unknown;
  /** Never evicted by the guard (only unload() and drain() dispose it). */
  pinned?: boolean;
  /** Lower is evicted first. Default 0. */
  priority?: number;
  /** Overrides the guard's idleTtl; null: never expires. With an adaptive keep-alive: the TTL without history. */
  idleTtl?: Duration | null;
  /** Overrides the guard's keepAlive for this session: { adaptive?, idleTtl?: { min?, max? } }. */
  keepAlive?: SessionKeepAliveOptions;
  /**
   * The session this one cannot outlive (a llama context's model), or its id: a use of this session
   * is a use of its parent too (reloaded first, kept busy, stamped used), and evicting the parent
   * disposes this one first.
   */
  parent?: Session | string;
}

export type SessionState = 'loaded' | 'evicting' | 'evicted' | 'loading' | 'removed';

export interface SessionInfo {
  id: string;
  bytes: number;
  state: SessionState;
  busy: number;
  pinned: boolean;
  priority: number;
  idleTtlMs: number | null;
  lastUsedAt: number;
  uses: number;
  loads: number;
  evictions: number;
  /** The idle TTL and, for adaptive sessions, the demand behind it. */
  keepAlive: SessionKeepAliveInfo;
  /** The parent's id, or null. */
  parent: string | null;
  /** The dependents' ids. */
  children: string[];
}

/** What a session needs from its guard. */
export interface SessionHost {
  now(): number;
  setTimer(fn: () => void, ms: number): TimerHandle;
  defaultIdleTtlMs: number | null;
  /** The session's adaptive keep-alive, or null on the fixed TTL (throws on bad options). */
  keepAliveFor(id: string, options: SessionKeepAliveOptions | undefined, fallbackMs: number | null): SessionKeepAlive | null;
  /** Decides an adaptive session's TTL now (under the GPU's current pressure). */
  decideTtl(keepAlive: SessionKeepAlive): number | null;
  /** Rejects (GuardDrainingError) when the guard takes no new uses. */
  assertAcceptingUses(): void;
  /** Evicts through the guard's path (events, accounting). */
  evict(session: Session, reason: EvictReason): Promise<boolean>;
  /** Reloads an evicted session through admission. */
  reload(session: Session): Promise<void>;
  /** A use ended: the guard may re-check pressure (ledger mode) or drain progress. */
  useEnded(session: Session): void;
  /** A registered session by id (for `parent` given as an id). */
  find(id: string): Session | undefined;
  /** Re-checks the quota for a change of the session's bytes (see Session.resize). */
  resize(session: Session, bytes: number): Promise<void>;
  /** Takes off the books a session whose memory went without the guard (see Session.markEvicted). */
  markEvicted(session: Session): Promise<boolean>;
}

/**
/**
 * Why a session was evicted. 'prewarm': to make room for a pre-warm (only with
 * keepAlive.prewarm.allowEviction); 'relief': freed for another process on the GPU (node-wide relief);
 * 'parent': its parent's eviction took it along; 'external': its memory went without the guard
 * (markEvicted(): a model server dropped it on its own).
 */
export type EvictReason = 'idle' | 'pressure' | 'admission' | 'prewarm' | 'relief' | 'unload' | 'drain' | 'parent' | 'external';

export class Session {
  readonly id: string;
  readonly parent: Session | undefined;
  readonly pinned: boolean;
  readonly priority: number;
  readonly idleTtlMs: number | null;
  state: SessionState = 'loaded';
  busy = 0;
  lastUsedAt: number;
  uses = 0;
  loads = 1;
  evictions = 0;
  /** @internal The adaptive keep-alive (demand model and TTL decision); null on the fixed TTL. */
  readonly keepAlive: SessionKeepAlive | null;
  /** @internal Settles when the current eviction or reload finishes. */
  transition: Promise<unknown> | undefined;
  private disposeFn: () => unknown;
  private disposed = false;
  private readonly loadFn: (() => unknown) | undefined;
  private idleTimer: TimerHandle | undefined;
  private idleDeadline: number | null = null;
  private readonly idleWaiters: Array<() => void> = [];
  private declaredBytes: number;
  private readonly dependents = new Set<Session>();

  constructor(
    id: string,
    options: SessionOptions,
    private readonly host: SessionHost,
  ) {
    if (typeof id !== 'string' || id.length === 0) throw new InvalidOptionError('id', 'expected a non-empty string');
    if (!options || typeof options.dispose !== 'function') {
      throw new InvalidOptionError('dispose', `session ${id}: expected a function`);
    }
    if (options.load !== undefined && typeof options.load !== 'function') {
      throw new InvalidOptionError('load', `session ${id}: expected a function`);
    }
    if (options.priority !== undefined && !Number.isFinite(options.priority)) {
      throw new InvalidOptionError('priority', `session ${id}: expected a finite number, got ${String(options.priority)}`);
    }
    const parent = typeof options.parent === 'string' ? host.find(options.parent) : options.parent;
    if (options.parent !== undefined && !(parent instanceof Session)) {
      throw new InvalidOptionError('parent', `session ${id}: no session named ${String(options.parent)}`);
    }
    if (parent?.state === 'removed') throw new InvalidOptionError('parent', `session ${id}: ${parent.id} was removed`);
    this.id = id;
    this.parent = parent;
    this.declaredBytes = parseBytes(options.bytes, 'bytes');
    this.pinned = options.pinned ?? false;
    this.priority = options.priority ?? 0;
    this.idleTtlMs =
      options.idleTtl === undefined
        ? host.defaultIdleTtlMs
        : options.idleTtl === null
          ? null
          : parseDuration(options.idleTtl, 'idleTtl');
    this.keepAlive = host.keepAliveFor(id, options.keepAlive, this.idleTtlMs);
    this.disposeFn = options.dispose;
    this.loadFn = options.load;
    this.lastUsedAt = host.now();
    this.armIdleTimer();
  }

  /** What the session holds by its own account (see resize()). */
  get bytes(): number {
    return this.declaredBytes;
  }

  /** The sessions that depend on this one (registered with it as `parent`). */
  get children(): Session[] {
    return [...this.dependents];
  }

  get reloadable(): boolean {
    return this.loadFn !== undefined;
  }

  /** Counts towards the ledger: loaded, or on the way in or out. */
  get resident(): boolean {
    return this.state === 'loaded' || this.state === 'evicting' || this.state === 'loading';
  }

  /**
   * Runs fn with the session marked busy (never evicted meanwhile); the last use is stamped when fn
   * settles. An evicted session with `load` is reloaded first, through admission.
   */
  use<T>(fn: () => T | Promise<T>): Promise<T> {
    // A child's use is its parent's: the parent is loaded first, stays busy and is stamped used.
    return this.parent ? this.parent.use(() => this.ownUse(fn)) : this.ownUse(fn);
  }

  /**
   * The session's memory changed after its admission (a context's first evaluation, an arena that
   * grew, a reload that measured differently). Growth is re-checked against the quota: accepted when
   * it fits under the soft limit; accepted, then relieved (releasers, idle evictions; resolves when
   * that relief is done) when it crosses soft; refused with VramQuotaError (figures in it, the bytes
   * unchanged) when it does not fit under the hard limit even after evicting every idle session. Then
   * give the memory back. Shrinking is always accepted. An evicted session's bytes are what its next
   * reload admits.
   */
  resize(bytes: ByteSize): Promise<void> {
    let parsed: number;
    try {
      parsed = parseBytes(bytes, 'bytes');
    } catch (error) {
      return Promise.reject(error);
    }
    return this.host.resize(this, parsed);
  }

  /**
   * The session's memory went without the guard (a model server dropped the model on its own): the
   * guard takes it off its books without calling dispose (an 'evict' event with reason 'external');
   * its children are disposed (they cannot outlive it); the next use reloads it. Uses in flight carry
   * on. Resolves false when it was not loaded.
   */
  markEvicted(): Promise<boolean> {
    return this.host.markEvicted(this);
  }

  private async ownUse<T>(fn: () => T | Promise<T>): Promise<T> {
    this.host.assertAcceptingUses();
    // Mark busy first: a use that starts while an expiry is being decided wins.
    this.busy += 1;
    this.cancelIdleTimer();
    this.keepAlive?.demand.useStarted(this.host.now());
    try {
      await this.ensureLoaded();
      this.uses += 1;
      return await fn();
    } finally {
      this.busy -= 1;
      this.lastUsedAt = this.host.now();
      this.keepAlive?.demand.useEnded(this.lastUsedAt);
      if (this.busy === 0) {
        this.armIdleTimer();
        for (const waiter of this.idleWaiters.splice(0)) waiter();
      }
      this.host.useEnded(this);
    }
  }

  /** Resolves when no use is in flight. */
  whenIdle(): Promise<void> {
    if (this.busy === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  info(): SessionInfo {
    return {
      id: this.id,
      bytes: this.bytes,
      state: this.state,
      busy: this.busy,
      pinned: this.pinned,
      priority: this.priority,
      idleTtlMs: this.idleTtlMs,
      lastUsedAt: this.lastUsedAt,
      uses: this.uses,
      loads: this.loads,
      evictions: this.evictions,
      keepAlive: this.keepAlive?.info(this.host.now()) ?? fixedKeepAliveInfo(this.pinned ? null : this.idleTtlMs),
      parent: this.parent?.id ?? null,
      children: [...this.dependents].map((c) => c.id),
    };
  }

  /** @internal The guard accepted a new size. */
  setBytes(bytes: number): void {
    this.declaredBytes = bytes;
  }

  /** @internal Joins the parent's children once registered. */
  attach(): void {
    this.parent?.dependents.add(this);
  }

  /** @internal Leaves the parent's children once removed. */
  detach(): void {
    this.parent?.dependents.delete(this);
  }

  /** @internal The guard's dispose: exactly once per load (later calls get a no-op). */
  takeDispose(): () => unknown {
    if (this.disposed) return () => undefined;
    this.disposed = true;
    return this.disposeFn;
  }

  /** @internal Called by the guard when a reload finished; load() may return a new dispose. */
  reloaded(dispose: unknown): void {
    if (typeof dispose === 'function') this.disposeFn = dispose as () => unknown;
    this.disposed = false;
  }

  /** @internal */
  runLoad(): unknown {
    if (!this.loadFn) throw new SessionEvictedError(this.id);
    return this.loadFn();
  }

  /** @internal */
  cancelIdleTimer(): void {
    this.idleTimer?.cancel();
    this.idleTimer = undefined;
    this.idleDeadline = null;
  }

  /** @internal (Re)arms the idle expiry from the end of the last use (an adaptive TTL is decided now). */
  armIdleTimer(): void {
    this.cancelIdleTimer();
    if (this.pinned || this.state !== 'loaded' || this.busy > 0) return;
    const ttl = this.ttlNow();
    if (ttl === null) return;
    this.idleDeadline = this.lastUsedAt + ttl;
    this.idleTimer = this.host.setTimer(() => this.expire(), this.idleDeadline - this.host.now());
  }

  /** @internal An adaptive TTL follows pressure: re-decided every tick, the expiry moves in when it shrank. */
  reviewIdleTimer(): void {
    if (!this.keepAlive || this.idleDeadline === null) return;
    const ttl = this.ttlNow();
    if (ttl !== null && this.lastUsedAt + ttl < this.idleDeadline) this.armIdleTimer();
  }

  private ttlNow(): number | null {
    return this.keepAlive ? this.host.decideTtl(this.keepAlive) : this.idleTtlMs;
  }

  private expire(): void {
    this.idleTimer = undefined;
    this.idleDeadline = null;
    // Decided synchronously: nothing can start a use between this check and marking the eviction. An
    // adaptive TTL is decided again here: pressure may have changed since it was armed.
    if (this.state !== 'loaded' || this.busy > 0) return;
    const ttl = this.ttlNow();
    if (ttl === null) return;
    // The same sum the timer was armed with (no rounding gap between the two).
    if (this.lastUsedAt + ttl > this.host.now()) {
      this.armIdleTimer();
      return;
    }
    void this.host.evict(this, 'idle');
  }

  private async ensureLoaded(): Promise<void> {
    for (;;) {
      switch (this.state) {
        case 'loaded':
          return;
        case 'evicting':
        case 'loading':
          await this.transition?.catch(() => undefined);
          continue;
        case 'evicted':
          if (!this.loadFn) throw new SessionEvictedError(this.id);
          await this.host.reload(this);
          continue;
        case 'removed':
          throw new SessionEvictedError(this.id);
      }
    }
  }
}
