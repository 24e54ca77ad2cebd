// Growth after admission: a commit above its reservation, a session's resize. The extra bytes are a new
// admission decision (the planner's decideGrowth, on the ledger's free memory once the growth is on
// the books): accepted, accepted then relieved, or refused with the figures. Decided and booked in one
// turn, so no admission in between can double-book; relief then runs outside that turn.
import { VramQuotaError } from '../errors';
import type { Ledger, Reservation } from './ledger';
import type { Meter } from './meter';
import { blockedSessions, decideGrowth } from './planner';
import type { Relief } from './relief';
import type { Reporter } from './reporter';
import type { Session } from './sessions';
import type { Limits } from './types';
import type { Clock } from './clock';
import type { VictimView } from './keepalive';

export interface GrowthParts {
  ledger: Ledger;
  clock: Clock;
  /** The planner's views of the sessions at `now` (the one victim order). */
  victims(now: number): VictimView[];
  meter: Meter;
  relief: Relief;
  report: Reporter;
  limits: Limits;
  paddingBytes: number;
}

export type GrowthKind = 'commit' | 'resize';

export class Growth {
  constructor(private readonly parts: GrowthParts) {}

  /**
   * A commit of `bytes` on `reservation`: throws VramQuotaError when the extra does not fit; returns
   * whether relief must run once the session is registered.
   */
  checkCommit(id: string, reservation: Reservation, bytes: number, session?: Session): boolean {
    if (bytes <= reservation.bytes) return false;
    return this.decide('commit', id, session, reservation.bytes, bytes, { addBytes: bytes, reservation });
  }

  /** A session's new size: booked when accepted; resolves once any relief it asked for is done. */
  async resize(session: Session, bytes: number): Promise<void> {
    const before = session.bytes;
    if (bytes === before) return;
    if (bytes < before || !session.resident) {
      session.setBytes(bytes);
      if (bytes < before && session.resident) this.parts.relief.checkLedger();
      return;
    }
    const relieve = this.decide('resize', session.id, session, before, bytes, { addBytes: bytes - before });
    session.setBytes(bytes);
    if (relieve) await this.parts.relief.relieve('growth');
  }

  /** Decides growth from `fromBytes` to `toBytes` (throws when refused); true when relief must run. */
  private decide(
    kind: GrowthKind,
    id: string,
    session: Session | undefined,
    fromBytes: number,
    toBytes: number,
    change: { addBytes: number; reservation?: Reservation },
  ): boolean {
    const { ledger, meter, limits, report } = this.parts;
    const m = meter.read();
    const figures = ledger.freeAfter(m, change, { hardBytes: limits.hardBytes, paddingBytes: this.parts.paddingBytes });
    const growthBytes = toBytes - fromBytes;
    const now = this.parts.clock.now();
    // The growing session and its ancestors cannot make room for it (a parent goes with its children).
    const familyIds = new Set<string>([id]);
    for (let p = session?.parent; p; p = p.parent) familyIds.add(p.id);
    const decision = decideGrowth({
      familyIds,
      now,
      growthBytes,
      freeAfterBytes: figures.free,
      usageAfterBytes: figures.usageBytes,
      softBytes: limits.softBytes,
      hardBytes: limits.hardBytes,
      sessions: this.parts.victims(now),
    });
    const event = {
      id,
      kind,
      fromBytes,
      toBytes,
      usageAfterBytes: figures.usageBytes,
      freeAfterBytes: figures.free,
      outcome: decision.kind === 'refuse' ? ('refused' as const) : decision.kind === 'relieve' ? ('relieve' as const) : ('accepted' as const),
    };
    const what = kind === 'commit' ? 'commit above its reservation' : 'session grew';
    if (decision.kind !== 'refuse') {
      report.report('grow', event, decision.kind === 'relieve' ? 'warn' : 'info', decision.kind === 'relieve' ? `${what}: relieving` : what);
      return decision.kind === 'relieve';
    }
    const error = new VramQuotaError(
      id,
      {
        neededBytes: growthBytes,
        freeBytes: Math.max(0, figures.free + growthBytes),
        deviceFreeBytes: figures.deviceFree,
        softBytes: limits.softBytes,
        hardBytes: limits.hardBytes,
        scopeUsageBytes: m.scopeBytes,
        reservedBytes: figures.reserved,
        eviction: { releasedBytes: 0, evicted: [], blocked: blockedSessions(ledger.all()) },
      },
      `${what} (${fromBytes} to ${toBytes} bytes) ${decision.why}`,
    );
    report.report('grow', event, 'warn', `${what}: refused`, { err: error });
    report.emit('refuse', { id, bytes: growthBytes, error });
    throw error;
  }
}
