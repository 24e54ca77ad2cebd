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
  GuardKeepAliveStatus,
  GuardStatus,
  HealthState,
  LoadEvent,
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
export type { GuardOptions, Logger, NodeOption, QuotaSize } from './options';
export type { KeepAliveOptions, SessionKeepAliveOptions } from './demand/options';
export type { SessionKeepAliveInfo } from './demand/session-keepalive';
export type { NodeStatus } from './node';
export { processTree } from './scope';
export type { ScopeOption } from './scope';
export { Session } from './sessions';
export type { EvictReason, SessionInfo, SessionOptions, SessionState } from './sessions';
export type { GuardMetricsOptions } from '../metrics/guard';
