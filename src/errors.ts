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
  constructor(option: string, message: string) {
    super('INVALID_OPTION', `${option}: ${message}`);
    this.option = option;
  }
}

/** The object was closed and cannot be used any more. */
export class ClosedError extends VramguardError {
  constructor(what: string) {
    super('CLOSED', `${what} is closed`);
  }
}
