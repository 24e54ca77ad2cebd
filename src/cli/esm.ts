// string-width and ansi-escapes are published as ES modules only: loaded through ../esm-import (a real
// dynamic import, on every Node >= 20, resolved from this package).
import type AnsiEscapes from 'ansi-escapes';
import type StringWidth from 'string-width';

import { importModule } from '../esm-import';

async function importEsm<T>(name: string): Promise<T> {
  return (await importModule<{ default: T }>(name)).default;
}

export interface TerminalLibraries {
  /** Columns a string takes on a terminal (East Asian wide characters, emoji, ANSI codes ignored). */
  stringWidth: typeof StringWidth;
  /** Escape sequences: alternate screen, cursor, erasing, synchronized output. */
  ansiEscapes: typeof AnsiEscapes;
}

let loaded: Promise<TerminalLibraries> | undefined;

export function loadTerminalLibraries(): Promise<TerminalLibraries> {
  loaded ??= Promise.all([importEsm<typeof StringWidth>('string-width'), importEsm<typeof AnsiEscapes>('ansi-escapes')]).then(
    ([stringWidth, ansiEscapes]) => ({ stringWidth, ansiEscapes }),
  );
  return loaded;
}
