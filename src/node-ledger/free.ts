// How much one participant may admit now, from its own figures and the node's ledger. Pure: the
// ledger calls it under the node-wide lock, tests call it with numbers.

export interface NodeFreeInput {
  /** The device's free memory as NVML reports it; null without NVML (ledger-only). */
  deviceFreeBytes: number | null;
  /** The device's total memory; null when unknown (then there is no node term). */
  deviceTotalBytes: number | null;
  /** Kept free on the device, as the guard's own padding. */
  paddingBytes: number;
  /** The participant's own hard limit (Infinity when it has none). */
  ownHardBytes: number;
  /** The participant's own usage and outstanding reservations. */
  ownUsageBytes: number;
  ownReservedBytes: number;
  /** Every other live participant's usage and reservations. */
  others: ReadonlyArray<{ usageBytes: number; reservedBytes: number }>;
  /** The participant's share of the node from the policy file; null when it has none. */
  shareBytes: number | null;
}

export type NodeFreeLimit = 'device' | 'own-quota' | 'node' | 'share';

export interface NodeFreeResult {
  /** min of the terms below (can be negative: over by that much). */
  freeBytes: number;
  /** Which term is the minimum. */
  limitedBy: NodeFreeLimit;
  terms: {
    /** device free − padding − every participant's reservations (not yet visible to NVML). */
    device: number | null;
    /** own hard − own usage − own reservations. */
    ownQuota: number;
    /** device total − padding − everyone's usage and reservations. */
    node: number | null;
    /** share − own usage − own reservations. */
    share: number | null;
  };
  /** Sum of every participant's usage and reservations, this one included. */
  nodeCommittedBytes: number;
}

/**
 * free = min(device free − padding, own hard − own usage, device total − everyone's usage and
 * reservations, share − own usage), each term less the reservations it does not already see.
 */
export function nodeFree(input: NodeFreeInput): NodeFreeResult {
  let othersReserved = 0;
  let othersCommitted = 0;
  for (const p of input.others) {
    othersReserved += p.reservedBytes;
    othersCommitted += p.usageBytes + p.reservedBytes;
  }
  const own = input.ownUsageBytes + input.ownReservedBytes;
  const nodeCommittedBytes = othersCommitted + own;
  const device =
    input.deviceFreeBytes === null
      ? null
      : input.deviceFreeBytes - input.paddingBytes - othersReserved - input.ownReservedBytes;
  const ownQuota = input.ownHardBytes - own;
  const node = input.deviceTotalBytes === null ? null : input.deviceTotalBytes - input.paddingBytes - nodeCommittedBytes;
  const share = input.shareBytes === null ? null : input.shareBytes - own;
  let freeBytes = ownQuota;
  let limitedBy: NodeFreeLimit = 'own-quota';
  const consider = (value: number | null, name: NodeFreeLimit) => {
    if (value !== null && value < freeBytes) {
      freeBytes = value;
      limitedBy = name;
    }
  };
  consider(device, 'device');
  consider(node, 'node');
  consider(share, 'share');
  return { freeBytes, limitedBy, terms: { device, ownQuota, node, share }, nodeCommittedBytes };
}
