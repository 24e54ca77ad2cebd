// vramguard: keep GPU memory under control in Node.js inference servers.
export * as nvml from './nvml';
export type { NvmlCapabilities, NvmlOptions, NvmlProbe } from './nvml';
export { Sampler, Watermark } from './sampler';
export type {
  DeviceLostEvent,
  DeviceRecoveredEvent,
  SamplerEvents,
  SamplerOptions,
  WatermarkCrossing,
  WatermarkSpec,
} from './sampler';
export {
  ClosedError,
  GuardDrainingError,
  InvalidOptionError,
  NodeLedgerError,
  NodeLockTimeoutError,
  NodeShareError,
  NvmlError,
  NvmlUnavailableError,
  SessionEvictedError,
  TimeoutError,
  UnknownMigDeviceError,
  VramguardError,
  VramQuotaError,
} from './errors';
export type { EvictionReport, NodeQuotaFigures, NodeShareFigures, NvmlReason, QuotaFigures } from './errors';
export * from './node-ledger';
export * from './guard';
export type { DeviceSample, MigInstanceSample, MigModeState, MigSample, ProcessRecordLayout, ProcessSample, ProcessType, Snapshot, SystemInfo } from './types';
export { formatBytes, parseBytes, parseDuration } from './units';
export type { ByteSize, Duration } from './units';
