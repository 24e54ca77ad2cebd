// The guard's one reporting surface: every event it emits and every line it logs go through here, so
// the parts never hold the emitter or the logger themselves.
import type { Logger } from './options';
import type { GuardEvents } from './types';

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

export class Reporter {
  constructor(
    private readonly emitEvent: <K extends keyof GuardEvents>(event: K, payload: GuardEvents[K][0]) => void,
    private readonly logger: Logger | undefined,
  ) {}

  /** One line to the pino-compatible logger, if any (nothing is logged without one). */
  log(level: LogLevel, obj: object, msg: string): void {
    const logger = this.logger;
    if (!logger) return;
    const fn = logger[level];
    if (typeof fn === 'function') fn.call(logger, { component: 'vramguard', ...obj }, msg);
  }

  /** An event for the guard's listeners. */
  emit<K extends keyof GuardEvents>(event: K, payload: GuardEvents[K][0]): void {
    this.emitEvent(event, payload);
  }

  /** A log line and the event that goes with it. */
  report<K extends keyof GuardEvents>(event: K, payload: GuardEvents[K][0], level: LogLevel, msg: string, extra?: object): void {
    if (this.logger) this.log(level, extra ? { ...(payload as object), ...extra } : (payload as object), msg);
    this.emit(event, payload);
  }
}
