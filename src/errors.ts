// Every error vramguard throws, in one place. Each has a stable `code` to switch on and the figures
// in its message.

/** Base class: `code` is stable across versions. */
export class VramguardError extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.name = new.target.name;
    this.code = code;
  }
}

/** Why a value is absent, as NVML said it: the return code's name, its number, and the function. */
export interface NvmlReason {
  /** NVML's name for the return code, e.g. `NOT_SUPPORTED`, `GPU_IS_LOST`. */
  code: string;
  /** NVML's numeric return (nvmlReturn_t). */
  returnValue: number;
  /** The NVML function (or `dlopen`/`dlsym`) that returned it. */
  function: string;
}

/** An NVML call failed. `code` is NVML's name for the return (e.g. `GPU_IS_LOST`). */
export class NvmlError extends VramguardError {
  readonly returnValue: number;
  readonly nvmlFunction: string;
  constructor(reason: NvmlReason, detail?: string) {
    super(
      reason.code,
      detail ?? `${reason.function} failed with ${reason.code} (${reason.returnValue})`,
    );
    this.returnValue = reason.returnValue;
    this.nvmlFunction = reason.function;
  }
}

/** NVML cannot be used at all here (no driver, no library, init failed, bad mock scenario). */
export class NvmlUnavailableError extends NvmlError {
  constructor(reason: NvmlReason, detail: string) {
    super(reason, `NVML unavailable: ${detail}`);
  }
}

/** An option had a bad value. `option` names it. */
export class InvalidOptionError extends VramguardError {
  readonly option: string;
  constructor(option: string, message: string, code = 'INVALID_OPTION') {
    super(code, `${option}: ${message}`);
    this.option = option;
  }
}

/** A `MIG-` UUID names no MIG device on this machine (code UNKNOWN_MIG_DEVICE). `uuid` is the one asked for. */
export class UnknownMigDeviceError extends InvalidOptionError {
  readonly uuid: string;
  constructor(option: string, uuid: string, known: string) {
    super(option, `no MIG device ${uuid} (${known})`, 'UNKNOWN_MIG_DEVICE');
    this.uuid = uuid;
  }
}

/** The object was closed and cannot be used any more. */
export class ClosedError extends VramguardError {
  constructor(what: string) {
    super('CLOSED', `${what} is closed`);
  }
}

/** What eviction could and could not free when an admission did not fit. */
export interface EvictionReport {
  /** Bytes freed by evictions made for this admission. */
  releasedBytes: number;
  /** Sessions evicted for it. */
  evicted: string[];
  /** Sessions that could not be evicted, and why. */
  blocked: Array<{ id: string; bytes: number; reason: 'busy' | 'pinned' | 'loading' | 'child busy' | 'child pinned' | 'child loading' }>;
}

/** Figures carried by a VramQuotaError, so a server can degrade (a smaller model, CPU). */
export interface QuotaFigures {
  neededBytes: number;
  freeBytes: number;
  /** Free memory on the device as NVML reports it, less the padding (null without NVML). */
  deviceFreeBytes: number | null;
  softBytes: number;
  hardBytes: number;
  scopeUsageBytes: number;
  reservedBytes: number;
  eviction: EvictionReport;
  /** The node-wide term, when the guard coordinates with other processes on the GPU (option `node`). */
  node?: NodeQuotaFigures | null;
}

export interface NodeQuotaFigures {
  /** This participant's name. */
  participant: string;
  /** Which node term set the free memory: 'node' (everyone's usage and reservations), 'device', 'share'. */
  limitedBy: string;
  /** Device total less padding less every participant's usage and reservations. */
  nodeFreeBytes: number | null;
  /** Every participant's usage and reservations, this one included. */
  committedBytes: number;
  participants: number;
}

/** A load does not fit under the quota (or the device), even after evicting what could be evicted. */
export class VramQuotaError extends VramguardError implements QuotaFigures {
  readonly id: string | undefined;
  readonly neededBytes: number;
  readonly freeBytes: number;
  readonly deviceFreeBytes: number | null;
  readonly softBytes: number;
  readonly hardBytes: number;
  readonly scopeUsageBytes: number;
  readonly reservedBytes: number;
  readonly eviction: EvictionReport;
  readonly node: NodeQuotaFigures | null;
  constructor(id: string | undefined, figures: QuotaFigures, why: string) {
    const mib = (n: number) => `${(n / 2 ** 20).toFixed(0)} MiB`;
    super(
      'VRAM_QUOTA',
      `cannot admit ${id ?? 'load'} (${mib(figures.neededBytes)}): ${why}; free ${mib(figures.freeBytes)} ` +
        `(scope uses ${mib(figures.scopeUsageBytes)}, reserved ${mib(figures.reservedBytes)}, hard limit ` +
        `${mib(figures.hardBytes)}${figures.deviceFreeBytes === null ? '' : `, device free ${mib(figures.deviceFreeBytes)}`}` +
        (figures.node
          ? `, node free ${figures.node.nodeFreeBytes === null ? 'unknown' : mib(figures.node.nodeFreeBytes)} with ` +
            `${figures.node.participants} participants using and reserving ${mib(figures.node.committedBytes)}, limited by ${figures.node.limitedBy}`
          : '') +
        '); ' +
        `eviction freed ${mib(figures.eviction.releasedBytes)}` +
        (figures.eviction.blocked.length > 0
          ? `, could not evict ${figures.eviction.blocked.map((b) => `${b.id} (${b.reason})`).join(', ')}`
          : ''),
    );
    this.id = id;
    this.neededBytes = figures.neededBytes;
    this.freeBytes = figures.freeBytes;
    this.deviceFreeBytes = figures.deviceFreeBytes;
    this.softBytes = figures.softBytes;
    this.hardBytes = figures.hardBytes;
    this.scopeUsageBytes = figures.scopeUsageBytes;
    this.reservedBytes = figures.reservedBytes;
    this.eviction = figures.eviction;
    this.node = figures.node ?? null;
  }
}

/** use() on a session that was evicted and has no `load` to bring it back. */
export class SessionEvictedError extends VramguardError {
  readonly id: string;
  constructor(id: string) {
    super('SESSION_EVICTED', `session ${id} was evicted and has no load() to reload it`);
    this.id = id;
  }
}

/** The guard is draining or closed: no admissions, no new uses. */
export class GuardDrainingError extends VramguardError {
  constructor(state: string) {
    super('DRAINING', `the guard is ${state}: no new loads or uses`);
  }
}

/** Something the guard ran for the user (a dispose, a releaser) did not finish in time. */
export class TimeoutError extends VramguardError {
  readonly timeoutMs: number;
  constructor(what: string, timeoutMs: number) {
    super('TIMEOUT', `${what} did not finish within ${timeoutMs} ms`);
    this.timeoutMs = timeoutMs;
  }
}

/** The node-wide ledger cannot be used: an unsafe or unusable directory, a bad entry, a bad policy file. */
export class NodeLedgerError extends VramguardError {
  /** The file or directory at fault. */
  readonly path: string;
  constructor(path: string, message: string) {
    super('NODE_LEDGER', `${path}: ${message}`);
    this.path = path;
  }
}

/** The node-wide lock was not acquired in time (another participant holds it, alive, for that long). */
export class NodeLockTimeoutError extends VramguardError {
  readonly path: string;
  readonly waitedMs: number;
  constructor(path: string, waitedMs: number) {
    super('NODE_LOCK_TIMEOUT', `node-wide lock ${path} not acquired within ${Math.round(waitedMs)} ms`);
    this.path = path;
    this.waitedMs = waitedMs;
  }
}

/** Figures of a participant measured against its share of the node (the policy file). */
export interface NodeShareFigures {
  participant: string;
  uuid: string;
  shareBytes: number;
  usageBytes: number;
  reservedBytes: number;
  /** Bytes asked for (0 when the participant is found over its share at join or on a declare). */
  neededBytes: number;
}

/** A participant is (or would be, with this load) over its share of the node's policy. */
export class NodeShareError extends VramguardError implements NodeShareFigures {
  readonly participant: string;
  readonly uuid: string;
  readonly shareBytes: number;
  readonly usageBytes: number;
  readonly reservedBytes: number;
  readonly neededBytes: number;
  constructor(figures: NodeShareFigures) {
    const mib = (n: number) => `${(n / 2 ** 20).toFixed(0)} MiB`;
    super(
      'NODE_SHARE',
      `participant ${figures.participant} on ${figures.uuid} is over its node share: uses ${mib(figures.usageBytes)}, ` +
        `reserved ${mib(figures.reservedBytes)}` +
        (figures.neededBytes > 0 ? `, asks ${mib(figures.neededBytes)}` : '') +
        `, share ${mib(figures.shareBytes)}`,
    );
    this.participant = figures.participant;
    this.uuid = figures.uuid;
    this.shareBytes = figures.shareBytes;
    this.usageBytes = figures.usageBytes;
    this.reservedBytes = figures.reservedBytes;
    this.neededBytes = figures.neededBytes;
  }
}
