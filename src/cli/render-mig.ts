// The MIG rows of `vramguard watch`: under a MIG-enabled GPU, one row per MIG device (index, GPU and
// compute instance ids, short UUID, memory used / total, processes), as nvidia-smi's MIG section lists
// them; a MIG device list that could not be read says why. GPUs without MIG get no rows. Pure.
import { bar, type DrawContext, formatMemory, line, padEnd, type Segment } from './draw';
import type { DeviceSample, MigInstanceSample, Snapshot } from '../types';

/** "MIG-11111111": the first group of a MIG UUID, enough to tell a GPU's MIG devices apart. */
export function shortMigUuid(uuid: string | null): string {
  if (uuid === null) return 'MIG-?';
  const match = /^(MIG-[0-9a-f]{8})[0-9a-f-]/i.exec(uuid);
  return match ? match[1]! : uuid;
}

/** Whether the GPU has MIG rows: MIG enabled now, or to be after the next reset. */
export function hasMigRows(device: DeviceSample): boolean {
  const mig = device.mig;
  return !device.lost && mig !== null && (mig.mode.current === 'enabled' || mig.mode.pending === 'enabled');
}

/** The rows' count for a GPU (to fit the screen before drawing). */
export function migRowCount(device: DeviceSample): number {
  if (!hasMigRows(device)) return 0;
  const instances = device.mig!.instances;
  return device.mig!.mode.current === 'enabled' && instances !== null && instances.length > 0 ? instances.length : 1;
}

/** What stands in for the rows when there are none to list: pending mode, no MIG devices, or why unreadable. */
function migNote(device: DeviceSample): string | null {
  const mig = device.mig!;
  if (mig.mode.current !== 'enabled') return `MIG ${mig.mode.pending} after the next GPU reset`;
  if (mig.instances === null) {
    const reason = mig.missing.instances;
    return `MIG devices unreadable: ${reason ? `${reason.code} (${reason.function})` : 'unknown reason'}`;
  }
  if (mig.instances.length === 0) return 'MIG enabled, no MIG devices';
  return null;
}

function ratio(i: MigInstanceSample): number | null {
  return i.memoryUsedBytes === null || !i.memoryTotalBytes ? null : Math.min(1, Math.max(0, i.memoryUsedBytes / i.memoryTotalBytes));
}

function memory(i: MigInstanceSample): string {
  return i.memoryUsedBytes === null || i.memoryTotalBytes === null ? 'N/A' : `${formatMemory(i.memoryUsedBytes)} / ${formatMemory(i.memoryTotalBytes)}`;
}

function processes(i: MigInstanceSample): string {
  if (i.processes === null) return `processes N/A (${i.missing.processes?.code ?? '?'})`;
  return `${i.processes.length} process${i.processes.length === 1 ? '' : 'es'}`;
}

/** "GI 1 CI 0": the instance ids, '?' where unread. */
function ids(i: MigInstanceSample): string {
  return `GI ${i.gpuInstanceId ?? '?'} CI ${i.computeInstanceId ?? '?'}`;
}

/** The MIG rows under a GPU's block: `cells` is the width of the GPU's memory bar, so the bars line up. */
export function migRows(device: DeviceSample, ctx: DrawContext, cells: number): string[] {
  if (!hasMigRows(device)) return [];
  const { colors } = ctx;
  const note = migNote(device);
  if (note !== null) return [line([['   MIG  ', colors.bold], [note, device.mig!.instances === null ? colors.yellow : colors.dim]], ctx)];
  return device.mig!.instances!.map((i) => {
    const head: Segment[] = [[`   MIG ${String(i.index).padEnd(2)} `, colors.bold], [padEnd(ids(i), 12, ctx), colors.dim], [padEnd(shortMigUuid(i.uuid), 14, ctx), colors.cyan]];
    const r = ratio(i);
    // Head 36 columns, brackets 2, memory 23, processes up to 16: the bar takes what is left, at most the GPU's.
    const room = Math.max(3, Math.min(cells, ctx.width - 36 - 2 - 23 - 16));
    return line([...head, ...bar(r, room, ctx), [`  ${padEnd(memory(i), 21, ctx)}`], [`  ${processes(i)}`, colors.dim]], ctx);
  });
}

/** `vramguard watch` without a terminal: a plain line per MIG device (or the note) after its GPU's line. */
export function plainMigLines(device: DeviceSample, snapshot: Snapshot): string {
  if (!hasMigRows(device)) return '';
  const head = `${new Date(snapshot.timestamp).toISOString()}  GPU ${device.index}`;
  const note = migNote(device);
  if (note !== null) return `${head}  ${note}\n`;
  return device
    .mig!.instances!.map((i) => {
      const r = ratio(i);
      return `${head}  MIG ${i.index}  ${i.uuid ?? 'unknown uuid'}  ${ids(i)}  mem ${memory(i)}${r === null ? '' : ` (${Math.round(r * 100)}%)`}  ${processes(i)}\n`;
    })
    .join('');
}
