// Unknown option keys are refused (plain JavaScript callers get no type checker): the error names the
// key and the nearest valid one.
import { InvalidOptionError } from './errors';

/** Edit distance (insert, delete, substitute), for "did you mean". */
function distance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i += 1) {
    let diagonal = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j += 1) {
      const above = row[j]!;
      const cost = a[i - 1]!.toLowerCase() === b[j - 1]!.toLowerCase() ? 0 : 1;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, diagonal + cost);
      diagonal = above;
    }
  }
  return row[b.length]!;
}

/** The known key nearest to `key` (null when none is reasonably close). */
export function nearestKey(key: string, known: readonly string[]): string | null {
  let best: string | null = null;
  let bestDistance = Infinity;
  for (const candidate of known) {
    const d = distance(key, candidate);
    if (d < bestDistance) {
      best = candidate;
      bestDistance = d;
    }
  }
  return best !== null && bestDistance <= Math.max(2, Math.floor(best.length / 2)) ? best : null;
}

/**
 * Throws InvalidOptionError for the first own key of `options` not in `known`. `prefix` names the
 * object ('quota.' for nested options). Undefined and non-objects are left to the callers' checks.
 */
export function checkOptionKeys(options: unknown, known: readonly string[], prefix = ''): void {
  if (typeof options !== 'object' || options === null || Array.isArray(options)) return;
  for (const key of Object.keys(options)) {
    if (known.includes(key)) continue;
    const near = nearestKey(key, known);
    throw new InvalidOptionError(
      `${prefix}${key}`,
      `unknown option${near ? ` (did you mean ${prefix}${near}?)` : ''}; known: ${known.join(', ')}`,
    );
  }
}
