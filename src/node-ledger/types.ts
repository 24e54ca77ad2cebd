// The node ledger's public shapes: options, the figures an admission takes and gives, what a
// participant looks like to the others, the events.
import type { NodeShareError } from '../errors';
import type { ByteSize, Duration } from '../units';
import type { DeclaredSession } from './entry';
import type { NodeFreeResult } from './free';
import type { NodeReservation } from './reservation';
import type { ScanProblem } from './scan';

export interface NodeLedgerOptions {
  /** The GPU's UUID (NVML's, e.g. `GPU-5f1c…`): the ledger's key. */
  uuid: string;
  /** This participant's name, as the policy file names it (e.g. `server-a`). */
  name: string;
  /** Directory of the ledger; default VRAMGUARD_NODE_DIR, else /dev/shm, /run/vramguard, the tmpdir. */
  dir?: string;
  /** The node's policy file (JSON, see policy.ts). */
  policyFile?: string;
  /** The device's total memory, for shares given as fractions and the node term (updated by admit()). */
  deviceTotalBytes?: ByteSize | null;
  /** Kept free on the device (as the guard's padding). */
  padding?: ByteSize;
  /** How long an operation waits for the node-wide lock. Default 10 s. */
  lockTimeout?: Duration;
  /** How often the participant checks for relief requests, its own entry and the policy. Default 250 ms. */
  tickInterval?: Duration;
  /** Its own hard limit, published for `serve --processes` and `watch` (the guard's quota). */
  hardBytes?: number | null;
  /** Usage at join, before the first declare(): checked against the share on the first tick. */
  usageBytes?: number;
  /** @internal Tests: called while the lock is held, after an admission's reservation is written. */
  insideAdmission?: () => void;
}

/** The participant's own figures at the moment of an admission (from the guard). */
export interface OwnFigures {
  /** Its usage on this GPU (the guard's max(NVML, ledger)). */
  usageBytes: number;
  /** Its hard limit; Infinity / absent when none. */
  hardBytes?: number;
  /** NVML's free memory on the device, null without NVML. */
  deviceFreeBytes?: number | null;
  deviceTotalBytes?: number | null;
}

export type NodeAdmission =
  | { admitted: true; reservation: NodeReservation; figures: NodeFreeResult }
  | { admitted: false; figures: NodeFreeResult; shareError: NodeShareError | null };

export interface ParticipantInfo {
  name: string;
  pid: number;
  uid: number;
  startTime: string;
  self: boolean;
  usageBytes: number;
  /** Its own hard limit (the guard's quota), null when it published none. */
  hardBytes: number | null;
  reservedBytes: number;
  reservations: Array<{ id: string; bytes: number; at: number }>;
  sessions: DeclaredSession[];
  /** Bytes of sessions it could release on a relief request. */
  releasableBytes: number;
  /** Its share by the policy file, null when none. */
  shareBytes: number | null;
  reliefListener: boolean;
  /** 'unverifiable': its pid exists but /proc hides its start time (hidepid). */
  liveness: 'alive' | 'unverifiable';
  /** Its file did not read back; the figures are the last valid ones seen. */
  stale: boolean;
  updatedAt: number;
}

export interface NodeLedgerEvents {
  'over-share': [NodeShareError];
  /** A file that was not counted, or counted from its last valid copy. */
  problem: [ScanProblem];
  'relief-request': [{ from: string; pid: number; bytes: number }];
  error: [Error];
}
