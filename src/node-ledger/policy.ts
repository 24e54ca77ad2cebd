// The node's policy file: how much of each GPU each named participant may hold. Every participant reads
// the same file (JSON), so the shares hold whichever process starts first:
//
//   { "participants": { "server-a": "40GiB", "server-b": { "share": 0.3 } },
//     "default": "8GiB",
//     "gpus": { "GPU-5f1c…": { "participants": { "server-a": "20GiB" } } } }
//
// A value is a size (bytes or '40GiB') or { "share": 0..1 } of the device's usable memory (total −
// padding). "default" applies to names not listed; without it they have no share. A GPU's own block
// replaces the top-level one for that GPU. The file must not be writable by group or others: whoever
// can write it sets everyone's quota.
import { readFileSync, statSync } from 'node:fs';

import { NodeLedgerError } from '../errors';
import { parseBytes } from '../units';

export type ShareSpec = { bytes: number } | { share: number };

export interface PolicyBlock {
  participants: Map<string, ShareSpec>;
  default: ShareSpec | null;
}

export interface NodePolicy {
  path: string;
  top: PolicyBlock;
  gpus: Map<string, PolicyBlock>;
}

function shareSpec(value: unknown, where: string, path: string): ShareSpec {
  if (typeof value === 'number' || typeof value === 'string') {
    try {
      return { bytes: parseBytes(value, where) };
    } catch (error) {
      throw new NodeLedgerError(path, (error as Error).message);
    }
  }
  if (typeof value === 'object' && value !== null && Object.keys(value).length === 1 && 'share' in value) {
    const share = (value as { share: unknown }).share;
    if (typeof share === 'number' && share > 0 && share <= 1) return { share };
    throw new NodeLedgerError(path, `${where}.share: expected a number in (0, 1], got ${JSON.stringify(share)}`);
  }
  throw new NodeLedgerError(path, `${where}: expected a size such as "40GiB" or { "share": 0.3 }, got ${JSON.stringify(value)}`);
}

function block(value: unknown, where: string, path: string): PolicyBlock {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new NodeLedgerError(path, `${where}: expected an object`);
  }
  const v = value as Record<string, unknown>;
  for (const key of Object.keys(v)) {
    if (key !== 'participants' && key !== 'default' && !(where === 'policy' && key === 'gpus')) {
      throw new NodeLedgerError(path, `${where}: unknown key ${JSON.stringify(key)} (known: participants, default${where === 'policy' ? ', gpus' : ''})`);
    }
  }
  const participants = new Map<string, ShareSpec>();
  if (v.participants !== undefined) {
    if (typeof v.participants !== 'object' || v.participants === null || Array.isArray(v.participants)) {
      throw new NodeLedgerError(path, `${where}.participants: expected an object of name: size`);
    }
    for (const [name, spec] of Object.entries(v.participants)) {
      participants.set(name, shareSpec(spec, `${where}.participants.${name}`, path));
    }
  }
  return { participants, default: v.default === undefined ? null : shareSpec(v.default, `${where}.default`, path) };
}

/** Parses policy text (JSON); errors name the file and the bad value. */
export function parsePolicy(text: string, path: string): NodePolicy {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new NodeLedgerError(path, `policy file is not valid JSON: ${(error as Error).message}`);
  }
  const top = block(value, 'policy', path);
  const gpus = new Map<string, PolicyBlock>();
  const raw = (value as Record<string, unknown>).gpus;
  if (raw !== undefined) {
    if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
      throw new NodeLedgerError(path, 'policy.gpus: expected an object of GPU UUID: block');
    }
    for (const [uuid, b] of Object.entries(raw)) gpus.set(uuid, block(b, `policy.gpus.${uuid}`, path));
  }
  return { path, top, gpus };
}

/** Reads the policy file, refusing one that group or others may write. */
export function readPolicy(path: string): { policy: NodePolicy; mtimeMs: number } {
  let stat;
  let text: string;
  try {
    stat = statSync(path);
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new NodeLedgerError(path, `cannot read the policy file: ${(error as Error).message}`);
  }
  if ((stat.mode & 0o022) !== 0) {
    throw new NodeLedgerError(
      path,
      `policy file has mode ${(stat.mode & 0o777).toString(8)}: writable by group or others, who could set any quota; chmod 644`,
    );
  }
  return { policy: parsePolicy(text, path), mtimeMs: stat.mtimeMs };
}

/** The share in bytes of `name` on `uuid`; null when the policy gives it none. */
export function shareBytes(
  policy: NodePolicy | null,
  name: string,
  uuid: string,
  usableBytes: number | null,
): number | null {
  if (!policy) return null;
  const b = policy.gpus.get(uuid) ?? policy.top;
  const spec = b.participants.get(name) ?? b.default;
  if (!spec) return null;
  if ('bytes' in spec) return spec.bytes;
  // A fraction of a device whose size is unknown gives no figure to enforce.
  return usableBytes === null ? null : Math.floor(spec.share * usableBytes);
}
