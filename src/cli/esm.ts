// string-width and ansi-escapes are published as ES modules only. This package compiles to CommonJS,
// where tsc turns `import()` into `require()`, which loads an ES module only from Node 20.19 on. A real
// dynamic import (created at run time, so tsc leaves it alone) loads them on every Node >= 20. The
// specifier is resolved first, so it does not matter from which directory the CLI was started.
import { pathToFileURL } from 'node:url';

import type AnsiEscapes from 'ansi-escapes';
import type StringWidth from 'string-width';

// eslint-disable-next-line @typescript-eslint/no-implied-eval
const dynamicImport = new Function('specifier', 'return import(specifier)') as (specifier: string) => Promise<unknown>;

async function importEsm<T>(name: string): Promise<T> {
  const module = (await dynamicImport(pathToFileURL(require.resolve(name)).href)) as { default: T };
  return module.default;
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
