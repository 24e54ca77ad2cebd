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
export { ClosedError, InvalidOptionError, NvmlError, NvmlUnavailableError, VramguardError } from './errors';
export type { NvmlReason } from './errors';
export type { DeviceSample, ProcessRecordLayout, ProcessSample, ProcessType, Snapshot, SystemInfo } from './types';
export { formatBytes, parseBytes, parseDuration } from './units';
export type { ByteSize, Duration } from './units';
