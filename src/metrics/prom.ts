// prom-client, loaded on first use: `require('vramguard')` for a Sampler or a guard loads no metrics
// stack; guard.metrics() and `vramguard serve` load it when they build metrics.
import type * as PromClient from 'prom-client';

let loaded: typeof PromClient | undefined;

export function promClient(): typeof PromClient {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  loaded ??= require('prom-client') as typeof PromClient;
  return loaded;
}
