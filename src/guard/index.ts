export { VramGuard } from './guard';
export { Reservation } from './ledger';
export type { FreeConstraint } from './ledger';
export { SessionRegistry } from './registry';
export type {
  AdmitEvent,
  BreachEvent,
  EvictEvent,
  GrowEvent,
  GuardEvents,
  GuardHealth,
  GuardMonitor,
  GuardStatus,
  HealthState,
  PressureEvent,
  RecycleEvent,
  RefuseEvent,
  ReleaseEvent,
  ReservationInfo,
  ScopeInForce,
  TrendEvent,
} from './types';
export type { ShutdownOptions } from './lifecycle';
export type { Clock, TimerHandle } from './clock';
export type { GuardOptions, Logger, QuotaSize } from './options';
export { processTree } from './scope';
export type { ScopeOption } from './scope';
export { Session } from './sessions';
export type { EvictReason, SessionInfo, SessionOptions, SessionState } from './sessions';
export type { GuardMetricsOptions } from '../metrics/guard';
