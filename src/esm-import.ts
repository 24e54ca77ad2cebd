// Loads ES modules (string-width, ansi-escapes, node-llama-cpp are published as ESM only;
// node-llama-cpp has top-level await, which require() never loads) from this CommonJS build. tsc
// turns `import()` into `require()`, so the import is created at run time, where tsc leaves it alone.
// The specifier is resolved first, from this package's place (as require() would): it does not
// matter from which directory the process was started.
import { pathToFileURL } from 'node:url';

// eslint-disable-next-line @typescript-eslint/no-implied-eval
const dynamicImport = new Function('specifier', 'return import(specifier)') as (specifier: string) => Promise<unknown>;

/** Imports a package (ESM or CommonJS) by name, resolved from this package. */
export async function importModule<T>(name: string): Promise<T> {
  const url = pathToFileURL(require.resolve(name)).href;
  try {
    return (await dynamicImport(url)) as T;
  } catch (error) {
    // Inside a vm context without an import callback (test runners), the runner's own import().
    if ((error as { code?: string }).code !== 'ERR_VM_DYNAMIC_IMPORT_CALLBACK_MISSING') throw error;
    return (await import(name)) as T;
  }
}

/** Imports an optional peer dependency, with a one-line error naming the package when it is missing. */
export async function importPeer<T>(name: string, feature: string): Promise<T> {
  try {
    return await importModule<T>(name);
  } catch (error) {
    const code = (error as { code?: string }).code;
    if (code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND') {
      throw new Error(`${feature} needs the optional peer dependency ${name}: npm install ${name}`, { cause: error });
    }
    throw error;
  }
}
