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
import { blockedSessions, decideAdmission } from './planner';
import type { Reporter } from './reporter';
import type { Session, SessionOptions } from './sessions';
import type { Limits, Measurement } from './types';

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
  /** A load finished: the guard re-checks pressure on its ledger. */
  loaded(): void;
  /** A commit crossed the soft limit: relief runs (in the background; commit() is synchronous). */
  relieve(): void;
}

export class Admission {
  private queue: Promise<unknown> = Promise.resolve();

  constructor(private readonly parts: AdmissionParts) {}

  /** Queues an admission of `need` bytes; resolves with its reservation or rejects VramQuotaError. */
  admit(need: number, id: string | undefined): Promise<Reservation> {
    const run = () => this.admitNow(need, id);
    const result = this.queue.then(run, run);
    this.queue = result.catch(() => undefined);
    return result;
  }

  /** Settles when every queued admission has. */
  settled(): Promise<void> {
    return this.queue.then(
      () => undefined,
      () => undefined,
    );
  }

  /** Reloads an evicted session through admission (the session's own bytes count once it is loading). */
  async reload(session: Session, admit: (bytes: number, id: string) => Promise<Reservation>): Promise<void> {
    if (session.state !== 'evicted') return;
    const transition = (async () => {
      const reservation = await admit(session.bytes, session.id);
      // From here the session's own bytes count (a loading session is resident): the reservation hands
      // over in the same turn, so the load is never counted twice.
      session.state = 'loading';
      reservation.cancel();
      try {
        session.reloaded(await session.runLoad());
        session.loads += 1;
        session.state = 'loaded';
        session.lastUsedAt = this.parts.clock.now();
        this.parts.loaded();
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

  private async admitNow(need: number, id: string | undefined): Promise<Reservation> {
    const { ledger, meter, evictor, lifecycle, report, clock, limits } = this.parts;
    const started = clock.now();
    const evicted: string[] = [];
    let releasedBytes = 0;
    for (;;) {
      lifecycle.assertAccepting();
      const m = meter.read();
      const free = this.free(m).free;
      const decision = decideAdmission({
        needBytes: need,
        freeBytes: free,
        returningBytes: m.returningBytes,
        canWait: this.parts.sampling,
        hardBytes: limits.hardBytes,
        scopeBytes: m.scopeBytes,
        sessions: ledger.all(),
      });
      if (decision.kind === 'admit') break;
      if (decision.kind === 'wait') {
        await meter.nextSample(this.parts.returnTimeout);
        continue;
      }
      if (decision.kind === 'refuse') throw this.refuse(need, id, decision.why, m, releasedBytes, evicted);
      releasedBytes += await evictor.evictAndWait(decision.victim, 'admission');
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
        relieve = this.parts.growth.checkCommit(sessionId, r, session.bytes);
      } catch (error) {
        session.cancelIdleTimer();
        throw error;
      }
      // The reservation hands over to the session in one turn: its bytes are never counted twice.
      ledger.forget(r);
      this.parts.addSession(session);
      if (relieve) this.parts.relieve();
      return session;
    });
    report.report('admit', { id, bytes: need, waitedMs: clock.now() - started, evicted }, 'info', 'load admitted');
    return reservation;
  }

  private free(m: Measurement) {
    return this.parts.ledger.free(m, { hardBytes: this.parts.limits.hardBytes, paddingBytes: this.parts.paddingBytes });
  }

  private refuse(need: number, id: string | undefined, why: string, m: Measurement, releasedBytes: number, evicted: string[]): VramQuotaError {
    const { limits, ledger, report } = this.parts;
    const figures = this.free(m);
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
      },
      why,
    );
    report.log('warn', { id, bytes: need, err: error }, 'admission refused');
    report.emit('refuse', { id, bytes: need, error });
    return error;
  }
}
