// The node's participants for `watch` and `serve --processes`: every process that coordinates on a GPU
// through the node ledger (guards with option node), read from the ledger directory without joining
// it (no lock, no write). Name, pid, quota (its own hard limit and its share by the node's policy),
// usage and reservations.
import { type NodeViewOptions, type ParticipantRow, readPolicy } from '../node-ledger';
import type { Snapshot } from '../types';
import { CliError, EXIT_USAGE } from './common';
import { formatMemory, line } from './draw';
import type { RenderContext } from './render';

export { readParticipants, type NodeViewOptions, type ParticipantRow } from '../node-ledger';

/** Checks the policy file once at start: a bad one is a usage error, not a silent empty column. */
export function checkNodeViewOptions(options: NodeViewOptions): void {
  if (options.nodePolicy === undefined) return;
  try {
    readPolicy(options.nodePolicy);
  } catch (error) {
    throw new CliError(`--node-policy: ${(error as Error).message}`, EXIT_USAGE);
  }
}

function bytesOrDash(bytes: number | null): string {
  return bytes === null ? '-' : formatMemory(bytes);
}

/** The participants table of `watch`: a header and one row each, in at most `lines` lines. */
export function participantTable(rows: ParticipantRow[], lines: number, ctx: RenderContext): string[] {
  if (rows.length === 0 || lines < 2) return [];
  const head = ' GPU  PARTICIPANT         PID      QUOTA      SHARE      USAGE   RESERVED';
  const out = [line([[head + ' '.repeat(Math.max(0, ctx.width - head.length)), ctx.colors.inverse]], ctx)];
  const shown = rows.length > lines - 1 ? rows.slice(0, lines - 2) : rows;
  for (const { gpu, info } of shown) {
    const over = info.shareBytes !== null && info.usageBytes + info.reservedBytes > info.shareBytes;
    out.push(
      line(
        [
          [` ${String(gpu).padStart(3)}  ${info.name.slice(0, 18).padEnd(18)} ${String(info.pid).padStart(7)}`],
          [`  ${bytesOrDash(info.hardBytes).padStart(9)}  ${bytesOrDash(info.shareBytes).padStart(9)}`],
          [`  ${formatMemory(info.usageBytes).padStart(9)}`, over ? ctx.colors.red : undefined],
          [`  ${formatMemory(info.reservedBytes).padStart(9)}`, info.reservedBytes > 0 ? ctx.colors.yellow : undefined],
          [info.stale ? '  (stale)' : '', ctx.colors.dim],
        ],
        ctx,
      ),
    );
  }
  if (shown.length < rows.length) out.push(line([[`  ... and ${rows.length - shown.length} more`, ctx.colors.dim]], ctx));
  return out;
}

/** `watch` without a terminal: one plain line per participant per pass. */
export function plainParticipantLine(row: ParticipantRow, snapshot: Snapshot): string {
  const { info } = row;
  return (
    `${new Date(snapshot.timestamp).toISOString()}  GPU ${row.gpu}  participant ${info.name}  pid ${info.pid}` +
    `  quota ${bytesOrDash(info.hardBytes)}  share ${bytesOrDash(info.shareBytes)}` +
    `  usage ${formatMemory(info.usageBytes)}  reserved ${formatMemory(info.reservedBytes)}${info.stale ? '  (stale)' : ''}\n`
  );
}
