// Loads an ES module (node-llama-cpp is ESM only, with top-level await: require() cannot load it)
// from this CommonJS build. tsc turns a plain `import()` into `require()`, so the import is made
// through a Function; inside a vm context without an import callback (test runners) the runner's own
// import() is used instead.
// eslint-disable-next-line @typescript-eslint/no-implied-eval
const nativeImport = new Function('specifier', 'return import(specifier)') as (specifier: string) => Promise<unknown>;

/** Imports an optional peer dependency, with a one-line error naming the package when it is missing. */
export async function importPeer<T>(name: string, feature: string): Promise<T> {
  try {
    try {
      return (await nativeImport(name)) as T;
    } catch (error) {
      if ((error as { code?: string }).code !== 'ERR_VM_DYNAMIC_IMPORT_CALLBACK_MISSING') throw error;
      return (await import(name)) as T;
    }
  } catch (error) {
    const code = (error as { code?: string }).code;
    if (code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND') {
      throw new Error(`${feature} needs the optional peer dependency ${name}: npm install ${name}`, { cause: error });
    }
    throw error;
  }
}
