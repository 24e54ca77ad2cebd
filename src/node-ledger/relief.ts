// Cross-process relief, opt-in. The channel is the ledger itself: a participant that needs room writes
// a request into its own entry (it can write nothing else); participants that listen notice it on their
// tick, run their handler (the guard's releasers and idle-session evictions, never a busy or pinned
// session) and write their answer (the bytes they freed) into their own entries. No socket to secure,
// nothing another user can write for us; the cost is a tick of latency (250 ms by default).
import type { Entry } from './entry';
import type { ScannedParticipant } from './scan';

export interface ReliefRequestInfo {
  /** The requester's participant name and pid. */
  from: string;
  pid: number;
  /** Bytes it needs. */
  bytes: number;
  requestId: string;
}

/** Releases idle sessions for another participant; returns the bytes it freed (or is freeing). */
export type ReliefHandler = (request: ReliefRequestInfo) => number | Promise<number>;

export interface ReliefOutcome {
  requestedBytes: number;
  /** Sum of what the answering participants report freed. */
  releasedBytes: number;
  answers: Array<{ name: string; pid: number; releasedBytes: number }>;
  /** Listeners that did not answer in time. */
  unanswered: Array<{ name: string; pid: number }>;
}

interface ReliefDeps {
  self: Entry;
  scan(): ScannedParticipant[];
  publish(): void;
  withLock<T>(fn: () => T): Promise<T>;
  onRequest(request: { from: string; pid: number; bytes: number }): void;
  onError(error: Error): void;
}

/** `<pid>-<starttime>-<instance>`: a participant's identity on the node. */
export function participantId(entry: Pick<Entry, 'pid' | 'startTime' | 'instance'>): string {
  return `${entry.pid}-${entry.startTime}-${entry.instance}`;
}

const delay = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
const POLL_MS = 25;

export class ReliefDesk {
  private handler: ReliefHandler | null = null;
  private readonly handled = new Set<string>();
  private nextId = 1;
  private closed = false;
  private pending: Promise<ReliefOutcome> | null = null;

  constructor(private readonly deps: ReliefDeps) {}

  listen(handler: ReliefHandler): () => void {
    if (typeof handler !== 'function') throw new TypeError('onReliefRequest(handler): handler must be a function');
    this.handler = handler;
    this.setListening(true);
    return () => {
      if (this.handler !== handler) return;
      this.handler = null;
      this.setListening(false);
    };
  }

  /** Answers requests not yet answered (one at a time, in the order found). */
  async tick(): Promise<void> {
    if (!this.handler) return; // not listening: nothing to read
    const open: Array<{ key: string; from: string; pid: number; bytes: number }> = [];
    for (const p of this.deps.scan()) {
      const r = p.entry.relief;
      if (r && !p.stale) open.push({ key: `${participantId(p.entry)}:${r.id}`, from: p.entry.name, pid: p.entry.pid, bytes: r.bytes });
    }
    const present = new Set(open.map((o) => o.key));
    for (const key of this.handled) if (!present.has(key)) this.handled.delete(key);
    for (const request of open) {
      if (this.handled.has(request.key) || !this.handler) continue;
      this.handled.add(request.key);
      this.deps.onRequest({ from: request.from, pid: request.pid, bytes: request.bytes });
      let released = 0;
      try {
        const value = await this.handler({ from: request.from, pid: request.pid, bytes: request.bytes, requestId: request.key });
        released = Number.isFinite(value) && value > 0 ? Math.round(value) : 0;
      } catch (error) {
        this.deps.onError(error as Error);
      }
      if (this.closed) return;
      // Answers only to requests still open; an answer raises nobody's figures: written without the lock.
      this.deps.self.answers = [
        ...this.deps.self.answers.filter((a) => present.has(a.request)),
        { request: request.key, releasedBytes: released, at: Date.now() },
      ].slice(-64);
      this.deps.publish();
    }
  }

  /** Asks every other listening participant; one request at a time per participant. */
  request(bytes: number, timeoutMs: number): Promise<ReliefOutcome> {
    if (this.pending) return this.pending;
    this.pending = this.run(bytes, timeoutMs).finally(() => (this.pending = null));
    return this.pending;
  }

  close(): void {
    this.closed = true;
    this.handler = null;
  }

  private async run(bytes: number, timeoutMs: number): Promise<ReliefOutcome> {
    const id = `q${this.nextId++}`;
    const answerKey = `${participantId(this.deps.self)}:${id}`;
    const listeners = await this.deps.withLock(() => {
      this.deps.self.relief = { id, bytes, at: Date.now() };
      this.deps.publish();
      return this.deps.scan().filter((p) => p.entry.reliefListener && !p.stale);
    });
    const outcome: ReliefOutcome = { requestedBytes: bytes, releasedBytes: 0, answers: [], unanswered: [] };
    const deadline = performance.now() + timeoutMs;
    let waiting = listeners.map((p) => ({ name: p.entry.name, pid: p.entry.pid, id: participantId(p.entry) }));
    try {
      while (waiting.length > 0 && !this.closed) {
        const now = new Map(this.deps.scan().map((p) => [participantId(p.entry), p.entry]));
        waiting = waiting.filter((w) => {
          const entry = now.get(w.id);
          if (!entry) return false; // gone: nothing more to wait for
          const answer = entry.answers.find((a) => a.request === answerKey);
          if (!answer) return true;
          outcome.answers.push({ name: w.name, pid: w.pid, releasedBytes: answer.releasedBytes });
          outcome.releasedBytes += answer.releasedBytes;
          return false;
        });
        if (waiting.length === 0 || performance.now() >= deadline) break;
        await delay(Math.min(POLL_MS, Math.max(1, deadline - performance.now())));
      }
    } finally {
      outcome.unanswered = waiting.map((w) => ({ name: w.name, pid: w.pid }));
      this.deps.self.relief = null;
      if (!this.closed) this.deps.publish();
    }
    return outcome;
  }

  private setListening(on: boolean): void {
    this.deps.self.reliefListener = on;
    void this.deps.withLock(() => this.deps.publish()).catch((error: Error) => this.deps.onError(error));
  }
}
