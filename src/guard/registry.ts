// guard.sessions: register, use, unload and forget sessions. A thin surface over the ledger (which
// holds them) and the evictor (which disposes them).
import { InvalidOptionError } from '../errors';
import type { Ledger } from './ledger';
import type { EvictReason, Session, SessionInfo, SessionOptions } from './sessions';

/** What the registry needs from the guard's parts. */
export interface RegistryParts {
  ledger: Ledger;
  createSession(id: string, options: SessionOptions): Session;
  addSession(session: Session): void;
  evict(session: Session, reason: EvictReason): Promise<boolean>;
}

export class SessionRegistry implements Iterable<Session> {
  /** @internal */
  constructor(private readonly parts: RegistryParts) {}

  /** Registers a loaded model. Throws when the id is taken. */
  register(id: string, options: SessionOptions): Session {
    const session = this.parts.createSession(id, options);
    this.parts.addSession(session);
    return session;
  }

  get(id: string): Session | undefined {
    return this.parts.ledger.get(id);
  }

  has(id: string): boolean {
    return this.parts.ledger.get(id) !== undefined;
  }

  /** Runs fn on the session (reloading it through admission when evicted and it has `load`). */
  use<T>(id: string, fn: (session: Session) => T | Promise<T>): Promise<T> {
    const session = this.parts.ledger.get(id);
    if (!session) return Promise.reject(new InvalidOptionError('id', `no session named ${id}`));
    return session.use(() => fn(session));
  }

  /** Waits for the session's uses to end, then disposes it (even if pinned). Resolves false if it was not loaded. */
  async unload(id: string): Promise<boolean> {
    const session = this.parts.ledger.get(id);
    if (!session) return false;
    // A use may start while we wait: check again after every wait, then evict in the same turn.
    while (session.busy > 0 || session.transition) {
      await session.whenIdle();
      if (session.transition) await session.transition.catch(() => undefined);
    }
    return this.parts.evict(session, 'unload');
  }

  async unloadAll(): Promise<void> {
    await Promise.all(this.list().map((s) => this.unload(s.id)));
  }

  /** Unloads and forgets the session, its children first. */
  async delete(id: string): Promise<boolean> {
    const session = this.parts.ledger.get(id);
    if (!session) return false;
    await Promise.all(session.children.map((c) => this.delete(c.id)));
    await this.unload(id);
    this.parts.ledger.remove(session);
    return true;
  }

  list(): SessionInfo[] {
    return this.parts.ledger.all().map((s) => s.info());
  }

  [Symbol.iterator](): Iterator<Session> {
    return this.parts.ledger.all()[Symbol.iterator]();
  }
}
