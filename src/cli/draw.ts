// The drawing primitives of the terminal screens (`watch`, its participants table): text cut and padded
// to terminal columns, lines of styled segments, bars and sparklines, memory figures.
import type { Colors } from 'picocolors/types';

export type Style = (text: string) => string;
/** A piece of a line: text and an optional style (colour). */
export type Segment = readonly [text: string, style?: Style];

/** What drawing needs to know about the terminal. */
export interface DrawContext {
  width: number;
  colors: Colors;
  /** ASCII only (no block characters), for terminals without UTF-8. */
  ascii: boolean;
  stringWidth: (text: string) => number;
}

// ---- text measuring -------------------------------------------------------------------------------

const segmenter = new Intl.Segmenter();

/** Cuts `text` to at most `columns` terminal columns, ending in an ellipsis when it was cut. */
export function truncate(text: string, columns: number, ctx: Pick<DrawContext, 'stringWidth' | 'ascii'>): string {
  if (columns <= 0) return '';
  if (ctx.stringWidth(text) <= columns) return text;
  const ellipsis = ctx.ascii ? '~' : '…';
  let out = '';
  let used = 0;
  for (const { segment } of segmenter.segment(text)) {
    const w = ctx.stringWidth(segment);
    if (used + w > columns - 1) break;
    out += segment;
    used += w;
  }
  return out + ellipsis;
}

export function padEnd(text: string, columns: number, ctx: DrawContext): string {
  const t = truncate(text, columns, ctx);
  return t + ' '.repeat(Math.max(0, columns - ctx.stringWidth(t)));
}

export function padStart(text: string, columns: number, ctx: DrawContext): string {
  const t = truncate(text, columns, ctx);
  return ' '.repeat(Math.max(0, columns - ctx.stringWidth(t))) + t;
}

/** Joins segments into one line of at most ctx.width columns, styling each piece. */
export function line(segments: readonly Segment[], ctx: DrawContext): string {
  let out = '';
  let used = 0;
  for (const [text, style] of segments) {
    if (text.length === 0) continue;
    const room = ctx.width - used;
    if (room <= 0) break;
    const w = ctx.stringWidth(text);
    const piece = w <= room ? text : truncate(text, room, ctx);
    out += style ? style(piece) : piece;
    used += w <= room ? w : ctx.stringWidth(piece);
    if (w > room) break;
  }
  return out;
}

// ---- bars and sparklines --------------------------------------------------------------------------

const EIGHTHS = ['', '▏', '▎', '▍', '▌', '▋', '▊', '▉'];
const SPARKS = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
const ASCII_SPARKS = ['_', '.', ':', '-', '=', '+', '*', '#'];

/** Colour for a load (utilization, memory, power): green, yellow from 50 %, red from 80 %. */
export function loadStyle(ratio: number | null, colors: Colors): Style | undefined {
  if (ratio === null) return colors.dim;
  if (ratio >= 0.8) return colors.red;
  if (ratio >= 0.5) return colors.yellow;
  return colors.green;
}

/** A bar `cells` wide inside brackets, filled to `ratio` (eighths of a cell with block characters). */
export function bar(ratio: number | null, cells: number, ctx: DrawContext): Segment[] {
  const [open, close] = ctx.ascii ? ['[', ']'] : ['▕', '▏'];
  if (cells <= 0) return [];
  if (ratio === null) return [[open, ctx.colors.dim], [' '.repeat(cells)], [close, ctx.colors.dim]];
  const r = Math.min(1, Math.max(0, ratio));
  let fill: string;
  if (ctx.ascii) {
    fill = '|'.repeat(Math.round(r * cells));
  } else {
    const eighths = Math.round(r * cells * 8);
    fill = '█'.repeat(Math.floor(eighths / 8)) + EIGHTHS[eighths % 8]!;
  }
  const rest = cells - [...fill].length;
  return [[open, ctx.colors.dim], [fill, loadStyle(r, ctx.colors)], [' '.repeat(Math.max(0, rest))], [close, ctx.colors.dim]];
}

/** The last `cells` values as a sparkline, newest on the right; null readings are blanks. */
export function sparkline(values: ReadonlyArray<number | null>, cells: number, ctx: DrawContext): Segment[] {
  if (cells <= 0) return [];
  const levels = ctx.ascii ? ASCII_SPARKS : SPARKS;
  const recent = values.slice(-cells);
  const out: Segment[] = [[' '.repeat(cells - recent.length)]];
  for (const v of recent) {
    if (v === null) out.push([' ']);
    else out.push([levels[Math.min(levels.length - 1, Math.round(Math.max(0, Math.min(1, v)) * (levels.length - 1)))]!, loadStyle(v, ctx.colors)]);
  }
  return out;
}

// ---- formatting -----------------------------------------------------------------------------------

const GiB = 2 ** 30;

/** Bytes as GiB with one decimal (MiB below 1 GiB), the way GPU tools show memory. */
export function formatMemory(bytes: number): string {
  if (bytes >= GiB) return `${(bytes / GiB).toFixed(1)} GiB`;
  return `${Math.round(bytes / 2 ** 20)} MiB`;
}
