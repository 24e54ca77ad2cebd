// The screen of `vramguard watch`, as a list of lines that fit the terminal: a header, a block per GPU
// (bars for utilization and memory, sparklines of their history) and a process table. Pure functions of
// the state; watch.ts writes the lines that changed.
import type { Colors } from 'picocolors/types';

import { bar, type DrawContext, formatMemory, line, loadStyle, padEnd, padStart, type Segment, sparkline, type Style } from './draw';
import { attributedProcesses } from '../mig';
import type { DeviceSample, MigInstanceSample, ProcessSample, Snapshot, SystemInfo } from '../types';
import type { ProcessDirectory } from '../proc';
import { migRowCount, migRows } from './render-mig';

export type { Segment, Style } from './draw';

export interface RenderContext extends DrawContext {
  height: number;
}

export interface DeviceHistory {
  util: Array<number | null>;
  mem: Array<number | null>;
}

export interface WatchState {
  system: SystemInfo;
  isMock: boolean;
  intervalMs: number;
  snapshot: Snapshot | null;
  history: Map<number, DeviceHistory>;
  directory: ProcessDirectory;
  now: Date;
  /** Tables shown above the process table (the node's participants), given at most `lines` lines. */
  sections?: Array<(lines: number, ctx: RenderContext) => string[]>;
}

/** Samples of history kept per device: enough for the widest sparkline. */
export const HISTORY_LENGTH = 240;

export function pushHistory(history: Map<number, DeviceHistory>, snapshot: Snapshot): void {
  for (const device of snapshot.devices) {
    let h = history.get(device.index);
    if (!h) {
      h = { util: [], mem: [] };
      history.set(device.index, h);
    }
    h.util.push(device.gpuUtilizationRatio);
    h.mem.push(memoryRatio(device));
    if (h.util.length > HISTORY_LENGTH) h.util.splice(0, h.util.length - HISTORY_LENGTH);
    if (h.mem.length > HISTORY_LENGTH) h.mem.splice(0, h.mem.length - HISTORY_LENGTH);
  }
}

export function memoryRatio(device: DeviceSample): number | null {
  if (device.memoryUsedBytes === null || !device.memoryTotalBytes) return null;
  return Math.min(1, Math.max(0, device.memoryUsedBytes / device.memoryTotalBytes));
}

function percent(ratio: number | null): string {
  return ratio === null ? 'N/A' : `${Math.round(ratio * 100)}%`;
}

function celsius(device: DeviceSample, ctx: RenderContext): string {
  return device.temperatureCelsius === null ? 'N/A' : `${Math.round(device.temperatureCelsius)}${ctx.ascii ? 'C' : '°C'}`;
}

function temperatureStyle(celsiusValue: number | null, colors: Colors): Style | undefined {
  if (celsiusValue === null) return colors.dim;
  if (celsiusValue >= 85) return colors.red;
  if (celsiusValue >= 70) return colors.yellow;
  return undefined;
}

function power(device: DeviceSample): string {
  if (device.powerUsageWatts === null) return 'N/A W';
  const usage = Math.round(device.powerUsageWatts);
  return device.powerLimitWatts === null ? `${usage} W` : `${usage} / ${Math.round(device.powerLimitWatts)} W`;
}

function powerRatio(device: DeviceSample): number | null {
  return device.powerUsageWatts !== null && device.powerLimitWatts ? device.powerUsageWatts / device.powerLimitWatts : null;
}

function memoryText(device: DeviceSample): string {
  if (device.memoryUsedBytes === null || device.memoryTotalBytes === null) return 'N/A';
  return `${formatMemory(device.memoryUsedBytes)} / ${formatMemory(device.memoryTotalBytes)}`;
}

function processType(p: ProcessSample): string {
  const c = p.types.includes('compute') || p.types.includes('mps');
  const g = p.types.includes('graphics');
  return c && g ? 'C+G' : g ? 'G' : p.types.includes('mps') ? 'M' : 'C';
}

// ---- the frame ------------------------------------------------------------------------------------

function header(state: WatchState, ctx: RenderContext): string {
  const s = state.system;
  const count = state.snapshot?.devices.length ?? 0;
  const gpus = `${count} GPU${count === 1 ? '' : 's'}`;
  const versions = `  driver ${s.driverVersion ?? 'N/A'}  CUDA ${s.cudaDriverVersion ?? 'N/A'}`;
  const mock: Segment = [state.isMock ? '  (mock NVML)' : '', ctx.colors.magenta];
  const time = state.now.toTimeString().slice(0, 8);
  // The widest variant that fits, dropping details as the terminal narrows.
  const variants: Array<{ left: Segment[]; right: string }> = [
    { left: [['vramguard', ctx.colors.bold], [`${versions}  ${gpus}  every ${formatInterval(state.intervalMs)}`], mock], right: `${time}  q: quit` },
    { left: [['vramguard', ctx.colors.bold], [`${versions}  ${gpus}`], mock], right: `${time}  q: quit` },
    { left: [['vramguard', ctx.colors.bold], [`${versions}  ${gpus}`]], right: time },
    { left: [['vramguard', ctx.colors.bold], [`  ${gpus}`]], right: time },
  ];
  for (const { left, right } of variants) {
    const leftWidth = left.reduce((n, [t]) => n + ctx.stringWidth(t), 0);
    const gap = ctx.width - leftWidth - ctx.stringWidth(right);
    if (gap >= 2) return line([...left, [' '.repeat(gap)], [right, ctx.colors.dim]], ctx);
  }
  return line(variants[variants.length - 1]!.left, ctx);
}

function formatInterval(ms: number): string {
  return ms >= 1000 && ms % 1000 === 0 ? `${ms / 1000}s` : ms >= 1000 ? `${(ms / 1000).toFixed(1)}s` : `${ms}ms`;
}

/** Three lines: identity and readings, the utilization bar and sparkline, the memory bar and sparkline. */
function fullBlock(device: DeviceSample, history: DeviceHistory | undefined, ctx: RenderContext): string[] {
  const { colors } = ctx;
  const title: Segment[] = [[` GPU ${device.index} `, colors.bold], [` ${device.name ?? 'unknown GPU'}`, colors.cyan]];
  if (device.lost) {
    title.push([`  LOST: ${device.lostReason?.code ?? 'GPU_IS_LOST'}`, (t) => colors.bold(colors.red(t))]);
  } else {
    title.push([`  ${device.pciBusId ?? ''}`, colors.dim]);
    title.push(['  '], [celsius(device, ctx), temperatureStyle(device.temperatureCelsius, colors)]);
    title.push(['  '], [power(device), loadStyle(powerRatio(device), colors)]);
    if (device.smClockHertz !== null) title.push([`  SM ${Math.round(device.smClockHertz / 1e6)} MHz`]);
    if (device.memoryClockHertz !== null) title.push([`  MEM ${Math.round(device.memoryClockHertz / 1e6)} MHz`]);
    const n = processCount(device);
    if (n !== null) title.push([`  ${n} process${n === 1 ? '' : 'es'}`, colors.dim]);
  }
  const labelWidth = 8; // "   UTIL "
  // After the bar: the percentage, then (memory) used / total; sparklines start in one column.
  const valueWidth = 27; // " 100%  999.9 GiB / 999.9 GiB"
  const rest = ctx.width - labelWidth - valueWidth;
  const sparkWidth = ctx.width >= 80 ? Math.min(60, Math.floor(rest * 0.4)) : 0;
  const barCells = Math.max(4, rest - (sparkWidth > 0 ? sparkWidth + 2 : 0) - 2);
  const util = device.lost ? null : device.gpuUtilizationRatio;
  const mem = device.lost ? null : memoryRatio(device);
  const row = (label: string, ratio: number | null, value: string, values: ReadonlyArray<number | null>): string =>
    line(
      [
        [`   ${label.padEnd(labelWidth - 3)}`, colors.bold],
        ...bar(ratio, barCells, ctx),
        [` ${percent(ratio).padStart(4)}`, ratio === null ? colors.dim : undefined],
        [padEnd(value, valueWidth - 5, ctx)],
        ...(sparkWidth > 0 ? [['  '] as Segment, ...sparkline(values, sparkWidth, ctx)] : []),
      ],
      ctx,
    );
  const memValue = device.lost ? '' : `  ${memoryText(device)}`;
  return [
    line(title, ctx),
    row('UTIL', util, '', history?.util ?? []),
    row('MEM', mem, memValue, history?.mem ?? []),
    ...migRows(device, ctx, barCells),
  ];
}

/** Processes on the GPU, its MIG devices' included (their lists answer where the GPU's is NO_PERMISSION). */
function processCount(device: DeviceSample): number | null {
  const listed = device.processes !== null || (device.mig?.instances ?? []).some((i) => i.processes !== null);
  return listed ? attributedProcesses(device).length : null;
}

/** "71.0/79.6 GiB": memory in a few columns, for the compact layout. */
function shortMemoryText(device: DeviceSample): string {
  if (device.memoryUsedBytes === null || device.memoryTotalBytes === null) return 'N/A';
  const [used, usedUnit] = formatMemory(device.memoryUsedBytes).split(' ');
  const [total, totalUnit] = formatMemory(device.memoryTotalBytes).split(' ');
  return usedUnit === totalUnit ? `${used}/${total} ${totalUnit}` : `${used} ${usedUnit}/${total} ${totalUnit}`;
}

/** One line per GPU, for terminals too short for the full blocks. */
function shortName(device: DeviceSample): string {
  return (device.name ?? 'unknown GPU').replace(/^NVIDIA /, '');
}

function compactLine(device: DeviceSample, ctx: RenderContext, longestName: number): string {
  const { colors } = ctx;
  const memValue = shortMemoryText(device);
  const withReadings = ctx.width >= 100; // temperature and power
  // Columns other than the name and the bars' cells: index, readings, labels, brackets, values.
  const fixed = 3 + 2 + (withReadings ? 14 : 0) + 7 + 2 + 5 + 6 + 2 + 1 + ctx.stringWidth(memValue);
  const nameWidth = Math.max(8, Math.min(24, longestName, ctx.width - fixed - 12));
  const cells = Math.max(3, Math.floor((ctx.width - fixed - nameWidth) / 2));
  const head: Segment[] = [[`${String(device.index).padStart(2)} `, colors.bold], [padEnd(shortName(device), nameWidth, ctx), colors.cyan]];
  if (device.lost) return line([...head, [`  LOST: ${device.lostReason?.code ?? 'GPU_IS_LOST'}`, (t) => colors.bold(colors.red(t))]], ctx);
  const mem = memoryRatio(device);
  const watts = device.powerUsageWatts === null ? 'N/A' : `${Math.round(device.powerUsageWatts)} W`;
  const readings: Segment[] = withReadings
    ? [
        ['  '],
        [padStart(celsius(device, ctx), 5, ctx), temperatureStyle(device.temperatureCelsius, colors)],
        ['  '],
        [padStart(watts, 5, ctx), loadStyle(powerRatio(device), colors)],
      ]
    : [];
  return line(
    [
      ...head,
      ...readings,
      ['  UTIL ', colors.bold],
      ...bar(device.gpuUtilizationRatio, cells, ctx),
      [` ${percent(device.gpuUtilizationRatio).padStart(4)}`],
      ['  MEM ', colors.bold],
      ...bar(mem, cells, ctx),
      [` ${memValue}`],
    ],
    ctx,
  );
}

interface ProcessRow {
  gpu: number;
  process: ProcessSample;
  /** The MIG device the process runs in, if any. */
  mig: MigInstanceSample | null;
}

/** "  1   0": the GI and CI columns of a process in a MIG device ('-' for one on a whole GPU). */
function instanceColumns(row: ProcessRow): string {
  const id = (value: number | null | undefined) => (value === null || value === undefined ? '-' : String(value)).padStart(3);
  return ` ${id(row.mig?.gpuInstanceId ?? row.process.gpuInstanceId)} ${id(row.mig?.computeInstanceId ?? row.process.computeInstanceId)}`;
}

function processTable(rows: ProcessRow[], lines: number, state: WatchState, ctx: RenderContext): string[] {
  const { colors } = ctx;
  if (lines <= 0) return [];
  const out: string[] = [];
  const user = 10;
  // GI and CI columns (as nvidia-smi's) only while some process runs in a MIG device.
  const withMig = rows.some((r) => r.mig !== null);
  const fixed = ` GPU${withMig ? '  GI  CI' : ''}      PID  TYPE  ${'USER'.padEnd(user)}    GPU-MEM   SM%  `;
  const head = `${fixed}COMMAND`;
  out.push(line([[head + ' '.repeat(Math.max(0, ctx.width - head.length)), colors.inverse]], ctx));
  if (lines === 1) return out;
  if (rows.length === 0) {
    out.push(line([['  no processes are using the GPUs', colors.dim]], ctx));
    return out;
  }
  const room = lines - 1;
  const shown = rows.length > room ? rows.slice(0, room - 1) : rows;
  for (const row of shown) {
    const { gpu, process: p } = row;
    const who = state.directory.get(p.pid);
    out.push(
      line(
        [
          [` ${String(gpu).padStart(3)}${withMig ? instanceColumns(row) : ''}  ${String(p.pid).padStart(7)}  ${processType(p).padEnd(4)}  `],
          [padEnd(who?.user ?? '-', user, ctx), who ? undefined : colors.dim],
          [`  ${(p.usedBytes === null ? 'N/A' : formatMemory(p.usedBytes)).padStart(9)}`],
          [`  ${(p.smUtilizationRatio === null ? 'N/A' : `${Math.round(p.smUtilizationRatio * 100)}%`).padStart(4)}  `, loadStyle(p.smUtilizationRatio, colors)],
          [who?.command ?? '-', who ? undefined : colors.dim],
        ],
        ctx,
      ),
    );
  }
  if (shown.length < rows.length) out.push(line([[`  … and ${rows.length - shown.length} more`.replace('…', ctx.ascii ? '...' : '…'), colors.dim]], ctx));
  return out;
}

/** The whole screen: at most ctx.height lines of at most ctx.width columns. */
export function renderFrame(state: WatchState, ctx: RenderContext): string[] {
  const lines: string[] = [header(state, ctx)];
  const snapshot = state.snapshot;
  if (!snapshot) {
    lines.push(line([['waiting for the first sample…', ctx.colors.dim]], ctx));
    return lines.slice(0, ctx.height);
  }
  const devices = snapshot.devices;
  const rows: ProcessRow[] = [];
  for (const device of devices) {
    for (const { process, mig } of attributedProcesses(device)) rows.push({ gpu: device.index, process, mig });
  }
  rows.sort((a, b) => a.gpu - b.gpu || (b.process.usedBytes ?? -1) - (a.process.usedBytes ?? -1) || a.process.pid - b.process.pid);

  // Full blocks (3 lines per GPU) when they leave room for a process table of a few rows; else one line per GPU.
  const tableMin = Math.min(rows.length, 3) + 2; // blank line, header, rows
  const migLines = devices.reduce((n, d) => n + migRowCount(d), 0);
  const full = 1 + devices.length * 3 + migLines + tableMin <= ctx.height && ctx.width >= 50;
  if (full) {
    for (const device of devices) lines.push(...fullBlock(device, state.history.get(device.index), ctx));
  } else {
    const room = ctx.height - 1;
    const fit = devices.length <= room ? devices.length : Math.max(0, room - 1);
    const longestName = Math.max(...devices.map((d) => ctx.stringWidth(shortName(d))));
    // A GPU's MIG rows follow it while every GPU line and the rows so far still fit.
    let left = fit < devices.length ? 0 : room - fit;
    for (const device of devices.slice(0, fit)) {
      lines.push(compactLine(device, ctx, longestName));
      const mig = migRowCount(device);
      if (mig > 0 && mig <= left) {
        lines.push(...migRows(device, ctx, Math.max(3, Math.floor(ctx.width / 6))));
        left -= mig;
      }
    }
    if (fit < devices.length) {
      lines.push(line([[`  … ${devices.length - fit} more GPUs: make the terminal taller`.replace('…', ctx.ascii ? '...' : '…'), ctx.colors.dim]], ctx));
    }
  }
  for (const section of state.sections ?? []) {
    // Each keeps room for the process table's header and a few rows.
    const shown = section(ctx.height - lines.length - 1 - tableMin, ctx);
    if (shown.length > 0) lines.push('', ...shown);
  }
  const left = ctx.height - lines.length;
  if (left >= 2) {
    lines.push('');
    lines.push(...processTable(rows, left - 1, state, ctx));
  }
  return lines.slice(0, ctx.height);
}

/** `vramguard watch` when stdout is not a terminal: one plain line per device per pass. */
export function plainLine(device: DeviceSample, snapshot: Snapshot): string {
  const time = new Date(snapshot.timestamp).toISOString();
  const name = device.name ?? 'unknown GPU';
  if (device.lost) return `${time}  GPU ${device.index}  ${name}  LOST (${device.lostReason?.code ?? 'GPU_IS_LOST'})\n`;
  const mem = memoryRatio(device);
  const temperature = device.temperatureCelsius === null ? 'N/A' : `${Math.round(device.temperatureCelsius)}C`;
  const n = processCount(device) ?? undefined;
  return (
    `${time}  GPU ${device.index}  ${name}  util ${percent(device.gpuUtilizationRatio)}` +
    `  mem ${memoryText(device)}${mem === null ? '' : ` (${percent(mem)})`}  temp ${temperature}  power ${power(device)}` +
    `  ${n === undefined ? 'processes N/A' : `${n} process${n === 1 ? '' : 'es'}`}\n`
  );
}
