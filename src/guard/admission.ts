// Admission: loads enter one at a time (a serialized queue, so concurrent admits never double-book).
// Each step is the planner's decision: admit (a reservation in the ledger), wait for disposed memory
// to come back, evict one idle session, or refuse with the figures. A reload of an evicted session
// goes through here too, its reservation handing over to the session's own bytes.
import { VramQuotaError } from '../errors';
import type { Clock } from './clock';
import type { Evictor } from './evictor';
import type { Growth } from './growth';
import type { Ledger, Reservation } from './ledger';
import type { Lifecycle } from './lifecycle';
import type { Meter } from './meter';
import type { NodeReservation } from '../node-ledger';
import type { NodeParticipation } from './node';
import { blockedSessions, decideAdmission } from './planner';
import type { Reporter } from './reporter';
import type { EvictReason, Session, SessionOptions } from './sessions';
import type { Limits, Measurement } from './types';
import type { VictimView } from './keepalive';

/** How one admission may make room. */
export interface AdmitOptions {
  /** Only these sessions (ids) may be evicted for it; default: any evictable one. */
  victims?: ReadonlySet<string>;
  /** The reason its evictions carry. Default 'admission'. */
  reason?: EvictReason;
  /** A refusal is logged at debug and emits no 'refuse' (a pre-warm the GPU has no room for). */
  quiet?: boolean;
}

export interface AdmissionParts {
  ledger: Ledger;
  meter: Meter;
  evictor: Evictor;
  lifecycle: Lifecycle;
  report: Reporter;
  clock: Clock;
  limits: Limits;
  paddingBytes: number;
  returnTimeout: number;
  /** Whether a monitor brings fresh readings (else waiting for returns is pointless). */
  sampling: boolean;
  /** Re-checks a commit above its reservation. */
  growth: Growth;
  /** Builds the session a reservation commits to (throws on bad options, changes nothing). */
  createSession(id: string, options: SessionOptions): Session;
  /** Registers a built session (the ledger, then a pressure check). */
  addSession(session: Session): void;
  /** The planner's views of the sessions (with their predicted reuse) at `now`. */
  victims(now: number): VictimView[];
  /** A reload finished after durationMs (the admission's wait excluded); the guard re-checks pressure. */
  loaded(session: Session, durationMs: number, prewarm: boolean): void;
  /** Node-wide coordination (option `node`), or null: admissions then are serialized in this process only. */
  node: NodeParticipation | null;
  /** A commit crossed the soft limit: relief runs (in the background; commit() is synchronous). */
  relieve(): void;
}

export class Admission {
  private queue: Promise<unknown> = Promise.resolve();
  private waiting = 0;

  constructor(private readonly parts: AdmissionParts) {}

  /** Queues an admission of `need` bytes; resolves with its reservation or rejects VramQuotaError. */
  admit(need: number, id: string | undefined, options: AdmitOptions = {}): Promise<Reservation> {
    const run = () => this.admitNow(need, id, options);
    this.waiting += 1;
    const result = this.queue.then(run, run).finally(() => {
      this.waiting -= 1;
    });
    this.queue = result.catch(() => undefined);
    return result;
  }

  /** Admissions queued or running. */
  get queued(): number {
    return this.waiting;
  }

  /** Settles when every queued admission has. */
  settled(): Promise<void> {
    return this.queue.then(
      () => undefined,
      () => undefined,
    );
  }

  /** Reloads an evicted session through admission (the session's own bytes count once it is loading). */
  async reload(session: Session, admit: (bytes: number, id: string) => Promise<Reservation>, options: { prewarm?: boolean } = {}): Promise<void> {
    // One reload at a time: a use arriving during another's (a pre-warm's) waits for it, then looks again.
    if (session.transition) {
      await session.transition.catch(() => undefined);
      return;
    }
    if (session.state !== 'evicted') return;
    const transition = (async () => {
      const reservation = await admit(session.bytes, session.id);
      // From here the session's own bytes count (a loading session is resident): the reservation hands
      // over in the same turn, so the load is never counted twice.
      session.state = 'loading';
      this.parts.node?.committed(reservation, session);
      reservation.cancel();
      try {
        const started = this.parts.clock.now();
        session.reloaded(await session.runLoad());
        session.loads += 1;
        session.state = 'loaded';
        session.lastUsedAt = this.parts.clock.now();
        this.parts.loaded(session, session.lastUsedAt - started, options.prewarm ?? false);
      } catch (error) {
        session.state = 'evicted';
        throw error;
      }
    })();
    session.transition = transition;
    try {
      await transition;
    } finally {
      session.transition = undefined;
    }
  }

  private async admitNow(need: number, id: string | undefined, options: AdmitOptions): Promise<Reservation> {
    const { ledger, meter, evictor, lifecycle, report, clock, limits } = this.parts;
    const started = clock.now();
    const evicted: string[] = [];
    let releasedBytes = 0;
    const node = this.parts.node;
    let askedNode = false;
    let mirror: NodeReservation | null = null;
    let lockedRefusals = 0;
    if (node) await node.ready();
    for (;;) {
      lifecycle.assertAccepting();
      const m = meter.read();
      const figures = this.free(m);
      const free = figures.free;
      const now = clock.now();
      const decision = decideAdmission({
        needBytes: need,
        freeBytes: free,
        returningBytes: m.returningBytes,
        canWait: this.parts.sampling,
        hardBytes: limits.hardBytes,
        scopeBytes: m.scopeBytes,
        sessions: () => {
          const views = this.parts.victims(now);
          return options.victims ? views.filter((v) => options.victims!.has(v.id)) : views;
        },
        now,
      });
      if (decision.kind === 'admit') {
        if (!node) break;
        // Node-wide: the same decision again under the node's lock, on the figures read there.
        mirror = await node.reserve(need, id, () => this.free(meter.read()).free);
        if (!lifecycle.accepting) {
          // A drain began while we waited for the node: give the node its bytes back.
          void mirror?.cancel();
          lifecycle.assertAccepting();
        }
        if (mirror) break;
        // Another process took the room meanwhile: decide again on what is left (paced by samples if
        // that keeps happening, so a view that disagrees with the locked one never spins).
        if (++lockedRefusals > 2) await meter.nextSample(this.parts.returnTimeout);
        continue;
      }
      if (decision.kind === 'wait') {
        await meter.nextSample(this.parts.returnTimeout);
        continue;
      }
      if (decision.kind === 'refuse') {
        if (node && node.relief && !askedNode && figures.limitedBy !== 'quota' && figures.limitedBy !== 'share' && need <= limits.hardBytes) {
          // Nothing of our own can make room: ask the other processes, then wait for it as for our own.
          askedNode = true;
          const freed = await node.askRelief(need - Math.max(0, free), id);
          if (freed > 0) await this.waitForRoom(need);
          continue;
        }
        throw this.refuse(need, id, decision.why, m, releasedBytes, evicted, options.quiet ?? false);
      }
      releasedBytes += await evictor.evictAndWait(decision.victim.session, options.reason ?? 'admission');
      evicted.push(decision.victim.id);
    }
    const reservation = ledger.reserve(id, need, clock.now(), (r, sessionId, options) => {
      if (!lifecycle.accepting) {
        ledger.forget(r);
        lifecycle.assertAccepting();
      }
      const session = this.parts.createSession(sessionId, { ...options, bytes: options.bytes ?? r.bytes });
      // More than reserved: the extra is a new admission decision (throws VramQuotaError, nothing
      // booked, when it cannot fit; the caller gives the memory back).
      let relieve: boolean;
      try {
        relieve = this.parts.growth.checkCommit(sessionId, r, session.bytes, session);
      } catch (error) {
        session.cancelIdleTimer();
        throw error;
      }
      // The reservation hands over to the session in one turn: its bytes are never counted twice.
      ledger.forget(r);
      this.parts.addSession(session);
      node?.committed(r, session);
      if (relieve) this.parts.relieve();
      return session;
    }, (r) => node?.cancelled(r));
    if (node && mirror) node.attach(reservation, mirror);
    report.report('admit', { id, bytes: need, waitedMs: clock.now() - started, evicted }, 'info', 'load admitted');
    return reservation;
  }

  /** After another process released memory for us: until it fits, at most returnTimeout. */
  private async waitForRoom(need: number): Promise<void> {
    const { meter, clock } = this.parts;
    const deadline = clock.now() + this.parts.returnTimeout;
    while (this.free(meter.read()).free < need && clock.now() < deadline) {
      await meter.nextSample(Math.max(1, deadline - clock.now()));
    }
  }

  private free(m: Measurement) {
    return this.parts.ledger.free(m, { hardBytes: this.parts.limits.hardBytes, paddingBytes: this.parts.paddingBytes });
  }

  private refuse(need: number, id: string | undefined, why: string, m: Measurement, releasedBytes: number, evicted: string[], quiet: boolean): Error {
    const { limits, ledger, report, node } = this.parts;
    const figures = this.free(m);
    const shareError = node?.shareError(need, figures.limitedBy) ?? null;
    if (shareError) {
      report.log(quiet ? 'debug' : 'warn', { id, bytes: need, err: shareError }, 'admission refused: over the node share');
      if (!quiet) report.emit('refuse', { id, bytes: need, error: shareError });
      return shareError;
    }
    const error = new VramQuotaError(
      id,
      {
        neededBytes: need,
        freeBytes: Math.max(0, figures.free),
        deviceFreeBytes: figures.deviceFree,
        softBytes: limits.softBytes,
        hardBytes: limits.hardBytes,
        scopeUsageBytes: m.scopeBytes,
        reservedBytes: figures.reserved,
        eviction: { releasedBytes, evicted, blocked: blockedSessions(ledger.all()) },
        node: node?.quotaFigures() ?? null,
      },
      why,
    );
    report.log(quiet ? 'debug' : 'warn', { id, bytes: need, err: error }, 'admission refused');
    if (!quiet) report.emit('refuse', { id, bytes: need, error });
    return error;
  }
}
