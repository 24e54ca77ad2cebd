// The guard's part in node-wide coordination (option `node`): it joins the GPU's node ledger once the
// first sample names the GPU, hands the node's figures to the ledger's free-memory function as one
// constraint (so free is computed in one place), mirrors each reservation into the node ledger, declares
// the guard's usage and sessions when they change, asks other processes for relief and answers them
// through the guard's own relief part. See README, "Several servers, one GPU".
import { ClosedError, type NodeQuotaFigures, type NodeShareError } from '../errors';
import { NodeLedger, type NodeFreeResult, type NodeReservation, type OwnFigures, type ParticipantInfo } from '../node-ledger';
import type { FreeConstraint, Ledger, Reservation } from './ledger';
import type { Meter } from './meter';
import type { ResolvedNodeOption } from './options';
import { evictable } from './planner';
import type { Relief } from './relief';
import type { Reporter } from './reporter';
import type { Session } from './sessions';
import type { Measurement } from './types';

export interface NodeStatus {
  name: string;
  /** Joined the GPU's node ledger (after the first sample); false before or after close. */
  joined: boolean;
  uuid: string | null;
  dir: string | null;
  /** What the node lets this guard admit now (the node's terms only; the guard's own are in usage.freeBytes). */
  freeBytes: number | null;
  limitedBy: string | null;
  /** Device total − padding − every participant's usage and reservations. */
  nodeFreeBytes: number | null;
  committedBytes: number | null;
  shareBytes: number | null;
  relief: boolean;
  participants: ParticipantInfo[];
  /** Why it is not joined, when joining failed. */
  error: string | null;
}

export interface NodeParts {
  option: ResolvedNodeOption;
  meter: Meter;
  ledger: Ledger;
  relief: Relief;
  report: Reporter;
  paddingBytes: number;
  hardBytes: number;
}

const SYNC_MS = 250;
const MiB = 2 ** 20;

export class NodeParticipation {
  private node: NodeLedger | null = null;
  private joining: Promise<NodeLedger> | null = null;
  private failure: Error | null = null;
  private closed = false;
  private readonly mirrors = new Map<Reservation, NodeReservation>();
  /** The figures of the locked admission in progress (read in the lock, not from a fresh scan). */
  private locked: NodeFreeResult | null = null;
  private declared: { usage: number; sessions: string } = { usage: -1, sessions: '' };
  private syncing = false;
  private timer: NodeJS.Timeout | null = null;
  private startJoin!: () => void;
  private readonly joinStarted = new Promise<void>((resolve) => (this.startJoin = resolve));

  /** The node's terms as one constraint of the ledger's free-memory function. */
  readonly constraint: FreeConstraint = {
    name: 'node',
    roomBytes: () => {
      const figures = this.locked ?? this.freeNow();
      return figures ? nodeRoom(figures) : null;
    },
  };

  constructor(private readonly parts: NodeParts) {}

  get relief(): boolean {
    return this.parts.option.relief;
  }

  /** Joins the GPU's ledger (the first sample named it). Admissions wait for this. */
  join(uuid: string | null, deviceTotalBytes: number | null): Promise<NodeLedger> {
    this.joining ??= this.joinNow(uuid, deviceTotalBytes).catch((error: Error) => {
      this.failure = error;
      this.parts.report.log('error', { err: error }, 'could not join the node ledger: admissions are refused');
      throw error;
    });
    this.joining.catch(() => undefined);
    this.startJoin();
    return this.joining;
  }

  /** The joined ledger; rejects when joining failed, waits while it is under way. */
  async ready(): Promise<NodeLedger> {
    if (this.node) return this.node;
    if (this.failure) throw this.failure;
    // Before the first sample the guard is starting: the node joins with it.
    if (!this.joining) await this.joinStarted;
    if (!this.joining) throw new ClosedError(`node participation of ${this.parts.option.name}`);
    return this.joining;
  }

  /**
   * One node-wide admission try, under the node's lock: `free` is the guard's free-memory function,
   * evaluated on the figures read under the lock. Null when the node has no room (try again).
   */
  async reserve(need: number, id: string | undefined, free: () => number): Promise<NodeReservation | null> {
    const node = await this.ready();
    const result = await node.admit(need, this.own(this.parts.meter.read()), {
      id,
      room: (figures) => {
        this.locked = figures;
        try {
          return free();
        } finally {
          this.locked = null;
        }
      },
    });
    return result.admitted ? result.reservation : null;
  }

  /** The guard's reservation `r` stands for `mirror` on the node until it commits or cancels. */
  attach(r: Reservation, mirror: NodeReservation): void {
    this.mirrors.set(r, mirror);
  }

  /** `r` committed as `session`: on the node its reservation becomes that session in one write. */
  committed(r: Reservation, session: Session): void {
    const mirror = this.mirrors.get(r);
    if (!mirror) return;
    this.mirrors.delete(r);
    void mirror.commit({ id: session.id, bytes: session.bytes, releasable: false }).catch((error: Error) => this.fail(error));
  }

  /** `r` was cancelled (or handed over to a reloading session, which `committed` declared first). */
  cancelled(r: Reservation): void {
    const mirror = this.mirrors.get(r);
    if (!mirror) return;
    this.mirrors.delete(r);
    void mirror.cancel().catch((error: Error) => this.fail(error));
  }

  /** The typed error when this process's node share is what keeps the load out, else null. */
  shareError(need: number, limitedBy: string): NodeShareError | null {
    if (limitedBy !== 'share' || !this.node || this.node.shareBytes() === null) return null;
    return this.node.shareError(need);
  }

  /** The node's term for a VramQuotaError. */
  quotaFigures(): NodeQuotaFigures | null {
    const figures = this.freeNow();
    if (!figures || !this.node) return null;
    return {
      participant: this.parts.option.name,
      limitedBy: nodeRoom(figures).limitedBy,
      nodeFreeBytes: figures.terms.node,
      committedBytes: figures.nodeCommittedBytes,
      participants: this.node.participants().length,
    };
  }

  /** Asks the other participants to release `bytes`; resolves the bytes they report freed (0 when relief is off). */
  async askRelief(bytes: number, id: string | undefined): Promise<number> {
    if (!this.parts.option.relief || !this.node) return 0;
    let outcome;
    try {
      outcome = await this.node.requestRelief(bytes, { timeout: this.parts.option.reliefTimeout });
    } catch (error) {
      this.parts.report.log('warn', { id, bytes, err: error }, 'node relief request failed');
      return 0;
    }
    this.parts.report.log(
      'info',
      { id, bytes, releasedBytes: outcome.releasedBytes, answers: outcome.answers, unanswered: outcome.unanswered },
      'node relief: other processes released memory',
    );
    return outcome.releasedBytes;
  }

  /** Publishes this guard's usage and sessions when they changed (read under the node's lock). */
  async sync(): Promise<void> {
    const node = this.node;
    if (!node || this.syncing || this.closed) return;
    this.syncing = true;
    try {
      await node.declare(() => {
        const state = this.declaredState();
        this.declared = { usage: state.usageBytes, sessions: signature(state.sessions) };
        return state;
      });
    } catch (error) {
      this.fail(error as Error);
    } finally {
      this.syncing = false;
    }
  }

  /** A pure read for status(): the node's figures and every participant, without the lock. */
  status(): NodeStatus {
    const node = this.node;
    const figures = this.freeNow();
    const room = figures ? nodeRoom(figures) : null;
    return {
      name: this.parts.option.name,
      joined: node !== null && !this.closed,
      uuid: node?.uuid ?? null,
      dir: node?.paths.dir ?? null,
      freeBytes: room && Number.isFinite(room.bytes) ? room.bytes : null,
      limitedBy: room?.limitedBy ?? null,
      nodeFreeBytes: figures?.terms.node ?? null,
      committedBytes: figures?.nodeCommittedBytes ?? null,
      shareBytes: node && !this.closed ? node.shareBytes() : null,
      relief: this.parts.option.relief,
      participants: node && !this.closed ? node.participants() : [],
      error: this.failure?.message ?? null,
    };
  }

  /** Leaves the ledger (drain/close): this process's entry and reservations go with it. */
  async close(): Promise<void> {
    this.closed = true;
    this.startJoin();
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    const node = this.node ?? (await this.joining?.catch(() => null)) ?? null;
    await node?.close();
  }

  /** What the node would let an admission have now; null before joining. */
  private freeNow(): NodeFreeResult | null {
    if (!this.node || this.closed) return null;
    return this.node.freeNow(this.own(this.parts.meter.read()));
  }

  /** Usage without the guard's reservations (the node counts those itself). */
  private own(m: Measurement): OwnFigures {
    const reserved = this.parts.ledger.reservedBytes();
    return {
      usageBytes: Math.max(0, m.source === 'ledger' ? m.scopeBytes - reserved : m.scopeBytes),
      hardBytes: this.parts.hardBytes,
      deviceFreeBytes: m.device?.memoryFreeBytes ?? null,
      deviceTotalBytes: m.device?.memoryTotalBytes ?? null,
    };
  }

  private declaredState(): { usageBytes: number; sessions: Array<{ id: string; bytes: number; releasable: boolean }> } {
    const sessions = this.parts.ledger
      .all()
      .filter((s) => s.resident)
      .map((s) => ({ id: s.id, bytes: s.bytes, releasable: this.parts.option.relief && evictable(s) }));
    return { usageBytes: this.own(this.parts.meter.read()).usageBytes, sessions };
  }

  private changed(): boolean {
    const state = this.declaredState();
    return Math.abs(state.usageBytes - this.declared.usage) >= MiB || signature(state.sessions) !== this.declared.sessions;
  }

  private async joinNow(uuid: string | null, deviceTotalBytes: number | null): Promise<NodeLedger> {
    const { option, report } = this.parts;
    if (!uuid) throw new Error('node: the GPU reports no UUID, so its node ledger cannot be found');
    const node = await NodeLedger.join({
      uuid,
      name: option.name,
      dir: option.dir,
      policyFile: option.policyFile,
      padding: this.parts.paddingBytes,
      deviceTotalBytes,
      lockTimeout: option.lockTimeout,
      hardBytes: this.parts.hardBytes,
      usageBytes: this.own(this.parts.meter.read()).usageBytes,
    });
    if (this.closed) {
      await node.close();
      throw new Error('node ledger closed while joining');
    }
    node.on('over-share', (error) => report.report('over-share', error, 'warn', 'over this process\'s node share', { err: error }));
    node.on('problem', (problem) => report.log('warn', { ...problem }, 'node ledger: a participant file was not counted as written'));
    node.on('error', (error) => report.log('error', { err: error }, 'node ledger error'));
    node.on('relief-request', (request) => report.log('info', request, 'node relief requested by another process'));
    if (option.relief) {
      node.onReliefRequest(async (request) => {
        const freed = await this.parts.relief.releaseFor(request.bytes);
        await this.sync();
        return freed;
      });
    }
    this.node = node;
    report.log('info', { uuid, name: option.name, dir: node.paths.dir, participants: node.participants().length }, 'joined the node ledger');
    this.timer = setInterval(() => {
      if (this.changed()) void this.sync();
    }, SYNC_MS);
    this.timer.unref();
    // Over its share at start: the ledger's first check (its tick, or our first declare) says so.
    return node;
  }

  private fail(error: Error): void {
    if (!this.closed) this.parts.report.log('error', { err: error }, 'node ledger update failed');
  }
}

/** The node's room for this guard: its terms but the guard's own quota (the guard's ledger has that). */
export function nodeRoom(figures: NodeFreeResult): { bytes: number; limitedBy: string } {
  let bytes = Infinity;
  let limitedBy = 'node';
  for (const [name, value] of [
    ['node', figures.terms.node],
    ['device', figures.terms.device],
    ['share', figures.terms.share],
  ] as const) {
    if (value !== null && value < bytes) {
      bytes = value;
      limitedBy = name === 'device' ? 'node-device' : name;
    }
  }
  return { bytes, limitedBy };
}

function signature(sessions: Array<{ id: string; bytes: number; releasable: boolean }>): string {
  return sessions.map((s) => `${s.id}:${s.bytes}:${s.releasable ? 1 : 0}`).join('|');
}
