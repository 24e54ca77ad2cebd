// The meter: what the guarded scope uses. It picks the scope in force (process tree, pids, device, or
// the ledger when NVML cannot tell), confirms host PIDs over time before falling back to device scope,
// and credits disposes whose memory NVML does not show as returned yet.
//
// read() is a pure function of the meter's state and the latest sample: status(), health() and scrapes
// call it as often as they like. State changes only in advance(), on samples and ticks.
import { type Clock, waitAtMost } from './clock';
import { type PerProcessProblem, perProcessProblem, processTree, type ScopeOption, sumPids } from './scope';
import type { GuardMonitor, Measurement, ScopeInForce } from './types';
import type { DeviceSample } from '../types';
import { migDeviceView } from '../mig';

/** How long NVML must list only foreign pids before the meter believes it reports host PIDs. */
export const HOST_PID_CONFIRM_MS = 5000;

/** A dispose whose memory NVML does not show as returned yet. */
export interface PendingReturn {
  bytes: number;
  /** Raw scope usage just before the dispose. */
  baseline: number;
  deadline: number;
}

export interface MeterSources {
  monitor: GuardMonitor | null;
  deviceIndex: number;
  /** A MIG target: the guarded device is this MIG device of deviceIndex's GPU. */
  migUuid?: string | null;
  /** Why NVML is unavailable (ledger mode), for the reason shown in status(). */
  nvmlReason: string | null;
  clock: Clock;
  /** The monitor reported the device lost (until it reports it recovered). */
  deviceLost(): boolean;
  /** Declared bytes of the resident sessions. */
  ledgerBytes(): number;
  /** Outstanding reservations. */
  reservedBytes(): number;
}

export interface MeterOptions {
  returnRatio: number;
  /** How long a dispose's bytes count as returned before NVML shows them. */
  creditMs: number;
  /** Reads the process tree (injected for tests). */
  processTree?: () => number[];
  /** Called when advance() changed what the native watermarks must watch (pids, or the device). */
  onScopeChange?: () => void;
  /** Called once when per-process accounting is given up for good. */
  onFallback?: (problem: string) => void;
}

/** Whether a pending return ended: NVML shows most of it back, or its deadline passed. */
function returned(p: PendingReturn, raw: number, now: number, returnRatio: number): boolean {
  return p.deadline <= now || p.baseline - raw >= returnRatio * p.bytes;
}

export class Meter {
  private treePids: number[];
  private stickyFallback: string | null = null;
  private hostPidsSince: number | null = null;
  private pending: PendingReturn[] = [];
  private readonly readTree: () => number[];
  /** MIG device views of the monitor's samples (the same view for the same sample). */
  private readonly migViews = new WeakMap<DeviceSample, DeviceSample>();
  /** perProcessProblem of the last sample looked at (it makes a syscall per listed pid). */
  private problemMemo: { device: DeviceSample; pids: readonly number[]; problem: PerProcessProblem | null } | null = null;

  constructor(
    readonly scope: ScopeOption,
    private readonly sources: MeterSources,
    private readonly options: MeterOptions,
  ) {
    this.readTree = options.processTree ?? (() => processTree());
    this.treePids = scope === 'process-tree' ? this.readTree() : [];
  }

  /** The pids whose memory counts (empty for device scope). */
  pids(): number[] {
    if (this.scope === 'process-tree') return this.treePids;
    if (typeof this.scope === 'object') return this.scope.pids;
    return [];
  }

  /** What the native watermarks should sum: our pids, or undefined for the device's used bytes. */
  watermarkPids(): number[] | undefined {
    return this.scope === 'device' || this.stickyFallback ? undefined : this.pids();
  }

  /** The latest sample of the guarded device (no NVML call). */
  device(): DeviceSample | null {
    const device = this.sources.monitor?.latest()?.devices.find((d) => d.index === this.sources.deviceIndex) ?? null;
    const migUuid = this.sources.migUuid;
    // A monitor that shows the board (not already the MIG device): the MIG device's view, once per sample.
    if (!device || !migUuid || device.uuid?.toLowerCase() === migUuid.toLowerCase()) return device;
    let view = this.migViews.get(device);
    if (!view) this.migViews.set(device, (view = migDeviceView(device, migUuid)));
    return view;
  }

  /** Scope usage now, less disposes still on their way back. Pure: changes nothing. */
  read(): Measurement {
    const m = this.readRaw();
    if (m.source === 'ledger') return m;
    const raw = m.rawBytes;
    const now = this.sources.clock.now();
    // Sessions NVML does not show yet (registered a sample ago) count at their declared bytes...
    const ledger = this.sources.ledgerBytes();
    const scopeBytes = Math.max(raw, ledger);
    // ...and for relief, disposes not yet reflected count as returned (never cascade on lagging readings).
    let credit = 0;
    for (const p of this.pending) {
      if (!returned(p, raw, now, this.options.returnRatio)) credit += Math.max(0, p.bytes - Math.max(0, p.baseline - raw));
    }
    const reliefBytes = Math.max(raw - credit, ledger);
    return { ...m, scopeBytes, reliefBytes, returningBytes: scopeBytes - reliefBytes };
  }

  /** Scope usage as NVML reports it, without credits; null in ledger mode. */
  rawScopeBytes(): number | null {
    const m = this.readRaw();
    return m.source === 'nvml' ? m.rawBytes : null;
  }

  /** Counts `bytes` just disposed as returned until NVML shows them back (or the credit expires). */
  credit(bytes: number, baseline: number): void {
    this.pending.push({ bytes, baseline, deadline: this.sources.clock.now() + this.options.creditMs });
  }

  /**
   * Takes in the latest sample: ends pending returns NVML now shows back, times the host-PID
   * confirmation, and gives up per-process accounting for good when it cannot work. Called on samples
   * and ticks, never by queries.
   */
  advance(): void {
    const device = this.device();
    if (!device || this.usesLedger(device)) return;
    let problem: PerProcessProblem | null = null;
    if (this.scope !== 'device' && this.stickyFallback === null) {
      problem = this.problemOf(device);
      if (problem?.kind !== 'host-pids') this.hostPidsSince = null;
      if (problem?.kind === 'host-pids') this.hostPidsSince ??= this.sources.clock.now();
      if (problem !== null && problem.kind !== 'unlisted' && (problem.kind !== 'host-pids' || this.hostPidsConfirmed())) {
        this.stickyFallback = problem.message;
        this.options.onFallback?.(problem.message);
        this.options.onScopeChange?.();
      }
    }
    if (this.pending.length === 0) return;
    const raw = this.readRaw({ problem }).rawBytes;
    const now = this.sources.clock.now();
    this.pending = this.pending.filter((p) => !returned(p, raw, now, this.options.returnRatio));
  }

  /** Re-reads the process tree (process-tree scope); tells the watermarks when it changed. */
  refreshTree(): void {
    if (this.scope !== 'process-tree') return;
    const pids = this.readTree();
    if (pids.join(',') === this.treePids.join(',')) return;
    this.treePids = pids;
    this.options.onScopeChange?.();
  }

  /** Waits for the next sample (or timeoutMs), then advances. Without a monitor it returns at once. */
  async nextSample(timeoutMs: number): Promise<void> {
    const monitor = this.sources.monitor;
    if (!monitor) return;
    await waitAtMost(this.sources.clock, monitor.next(), timeoutMs);
    this.advance();
  }

  /** The next sample's measurement (NVML mode), or the ledger now. */
  async fresh(timeoutMs: number): Promise<Measurement> {
    if (this.sources.monitor && !this.sources.deviceLost()) await this.nextSample(timeoutMs);
    return this.read();
  }

  /** Why per-process accounting fails on this sample, remembered per sample and pid set. */
  private problemOf(device: DeviceSample): PerProcessProblem | null {
    const pids = this.pids();
    const memo = this.problemMemo;
    if (memo && memo.device === device && memo.pids === pids) return memo.problem;
    const problem = perProcessProblem(device, pids);
    this.problemMemo = { device, pids, problem };
    return problem;
  }

  private hostPidsConfirmed(): boolean {
    return this.hostPidsSince !== null && this.sources.clock.now() - this.hostPidsSince >= HOST_PID_CONFIRM_MS;
  }

  private usesLedger(device: DeviceSample | null): boolean {
    return !device || device.lost || device.memoryUsedBytes === null || this.sources.deviceLost();
  }

  /** Scope usage as NVML reports it (or the ledger when NVML cannot tell); `known`: this sample's problem. */
  private readRaw(known?: { problem: PerProcessProblem | null }): Measurement {
    const device = this.device();
    if (!device || this.usesLedger(device)) {
      const reason =
        this.sources.monitor === null
          ? `NVML unavailable: ${this.sources.nvmlReason ?? 'unknown'}`
          : !device
            ? 'no sample yet'
            : `GPU ${this.sources.deviceIndex} unreadable (${device.lostReason?.code ?? device.missing.memoryUsedBytes?.code ?? 'lost'})`;
      const bytes = this.sources.ledgerBytes() + this.sources.reservedBytes();
      return measurement(bytes, 'ledger', 'ledger', reason, device);
    }
    const used = device.memoryUsedBytes!;
    if (this.scope === 'device') return measurement(used, 'nvml', 'device', null, device);
    const pids = this.pids();
    const fallback = this.stickyFallback ?? this.transientFallback(known ? known.problem : this.problemOf(device));
    if (fallback !== null) return measurement(used, 'nvml', 'device', `fell back to device scope: ${fallback}`, device);
    const usage = sumPids(device, pids)!;
    return measurement(usage.bytes, 'nvml', this.scope === 'process-tree' ? 'process-tree' : 'pids', null, device);
  }

  /** Why per-process accounting fails on this sample (host PIDs only once confirmed), or null. */
  private transientFallback(problem: PerProcessProblem | null): string | null {
    if (problem === null) return null;
    if (problem.kind === 'host-pids' && !this.hostPidsConfirmed()) return null;
    return problem.message;
  }
}

function measurement(bytes: number, source: 'nvml' | 'ledger', inForce: ScopeInForce, reason: string | null, device: DeviceSample | null): Measurement {
  return { scopeBytes: bytes, rawBytes: bytes, reliefBytes: bytes, returningBytes: 0, source, inForce, reason, device };
}
