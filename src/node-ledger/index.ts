// Node-wide coordination between guards that share a GPU (see ledger.ts for the design).
export { checkParticipantName, NodeLedger } from './ledger';
export { describeParticipant, publishedUsage, readNodeView, readParticipants } from './view';
export type { NodeView, NodeViewOptions, ParticipantRow } from './view';
export type { DeclaredState } from './ledger';
export { NodeReservation } from './reservation';
export type { NodeAdmission, NodeLedgerEvents, NodeLedgerOptions, OwnFigures, ParticipantInfo } from './types';
export { nodeFree } from './free';
export type { NodeFreeInput, NodeFreeLimit, NodeFreeResult } from './free';
export { parsePolicy, readPolicy, shareBytes } from './policy';
export type { NodePolicy, PolicyBlock, ShareSpec } from './policy';
export type { ReliefHandler, ReliefOutcome, ReliefRequestInfo } from './relief';
export type { DeclaredSession } from './entry';
export { defaultLedgerDirectory } from './directory';
