// Plain-text tables for the console report.

/**
 * Formats rows (arrays of cells) under columns ({ title, align: 'left' | 'right' }) as an aligned table.
 */
export function formatTable(columns, rows) {
  const cells = [columns.map((c) => c.title), ...rows.map((row) => row.map((cell) => String(cell ?? '')))];
  const widths = columns.map((_, i) => Math.max(...cells.map((row) => row[i].length)));
  const line = (row) =>
    row
      .map((cell, i) => (columns[i].align === 'right' ? cell.padStart(widths[i]) : cell.padEnd(widths[i])))
      .join('  ')
      .trimEnd();
  return [line(cells[0]), widths.map((w) => '-'.repeat(w)).join('  '), ...cells.slice(1).map(line)].join('\n');
}

/** A duration in nanoseconds, in the unit that reads best. */
export function formatNs(ns) {
  if (!Number.isFinite(ns)) return 'n/a';
  if (ns >= 1e6) return `${(ns / 1e6).toFixed(2)} ms`;
  if (ns >= 1e3) return `${(ns / 1e3).toFixed(1)} µs`;
  return `${ns.toFixed(1)} ns`;
}
