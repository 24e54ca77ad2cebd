// Keep-alive that follows demand (issue 12): the pure pieces the guard calls.
export { LoadForecast } from './forecast';
export type { ForecastAccuracy, ForecastOptions, LoadForecastView } from './forecast';
export { planPrewarm } from './prewarm';
export type { PrewarmCandidate, PrewarmInput, PrewarmLoad, PrewarmPlan } from './prewarm';
export { DEFAULT_DEMAND, SessionDemand } from './session-demand';
export type { DemandEstimate, DemandOptions } from './session-demand';
export { ALPHA_RANGE, ewmaDecay, ewmaStep, fitLine, validateAlpha } from './stats';
export type { LineFit } from './stats';
export { adaptiveIdleTtl, pressureFactor, validateTtlBounds } from './ttl';
export type { TtlBounds, TtlDecision, TtlInput, TtlPolicy } from './ttl';
export { compareVictims, evictable, pickVictim, rankVictims, scoreVictims } from './victims';
export type { RankedVictim, VictimCandidate } from './victims';
export { UseWindow } from './window';
export { DEFAULT_TTL_BOUNDS, resolveKeepAlive, resolveSessionKeepAlive } from './options';
export type { KeepAliveOptions, ResolvedKeepAlive, SessionKeepAliveOptions } from './options';
export { fixedKeepAliveInfo, SessionKeepAlive } from './session-keepalive';
export type { SessionKeepAliveInfo } from './session-keepalive';
