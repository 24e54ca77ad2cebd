// `vramguard serve`: a Prometheus exporter. The native sampler reads NVML every --interval; /metrics
// reports the latest pass (no NVML call in a scrape), /health says whether that pass is fresh.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';

import { Registry } from 'prom-client';

import { Sampler } from '../sampler';
import { type CommonOptions, CliError, EXIT_FAILURE, EXIT_OK, formatAddress, type ListenAddress, onStopSignal, openNvml, passes } from './common';
import { buildRegistry, ExporterState } from '../metrics/gpu';
import { MockWarnings } from './mock-warnings';
import { negotiate, type Offer, refuses } from './negotiate';
import { registerNodeMetrics } from '../metrics/node';
import { checkNodeViewOptions, type NodeViewOptions } from './participants';

export interface ServeOptions extends CommonOptions, NodeViewOptions {
  listen: ListenAddress;
  intervalMs: number;
  /** /health turns 503 once the latest pass is older than this; default 3 intervals. */
  staleAfterMs?: number;
  /** Also per-process series, and the node's participants (vramguard_node_participant_*). */
  processes: boolean;
}

/** The expositions /metrics offers, in order of preference on a tie. */
const TEXT: Offer = { mediaType: 'text/plain', version: '0.0.4' };
const OPENMETRICS: Offer = { mediaType: 'application/openmetrics-text', version: '1.0.0' };

/**
 * The format for this scrape, by the Accept header's q-values. A header that accepts neither gets the
 * text format (as Prometheus's own client libraries do), unless it refuses text outright: then null (406).
 */
function chooseFormat(request: IncomingMessage): Offer | null {
  const accept = request.headers.accept;
  return negotiate(accept, [TEXT, OPENMETRICS]) ?? (refuses(accept, TEXT) ? null : TEXT);
}

function send(response: ServerResponse, status: number, contentType: string, body: string, head: boolean): void {
  response.writeHead(status, { 'Content-Type': contentType, 'Content-Length': Buffer.byteLength(body), 'Cache-Control': 'no-store' });
  response.end(head ? undefined : body);
}

const INDEX = `<!doctype html>
<html><head><title>vramguard exporter</title></head>
<body><h1>vramguard exporter</h1><p><a href="metrics">/metrics</a> &middot; <a href="health">/health</a></p></body></html>
`;

export async function runServe(options: ServeOptions): Promise<number> {
  checkNodeViewOptions(options);
  const { probe, devices } = openNvml(options);
  const staleAfterMs = options.staleAfterMs ?? 3 * options.intervalMs;
  const sampler = new Sampler({ interval: options.intervalMs, devices }).start();
  const state = new ExporterState(sampler, probe.system, { processes: options.processes, intervalMs: options.intervalMs });
  const text = buildRegistry(state, Registry.PROMETHEUS_CONTENT_TYPE);
  const openMetrics = buildRegistry(state, Registry.OPENMETRICS_CONTENT_TYPE);
  if (options.processes) for (const registry of [text, openMetrics]) registerNodeMetrics(registry as Registry, sampler, options);

  // Every pass is observed once for the counters; the first one is there before the port opens.
  const stream = passes(sampler);
  const warnings = new MockWarnings('serve');
  const first = await stream.next();
  if (!first.done) state.observe(first.value);
  warnings.report();
  const observing = (async () => {
    for await (const snapshot of stream) {
      state.observe(snapshot);
      warnings.report();
    }
  })();

  const server: Server = createServer((request, response) => {
    const head = request.method === 'HEAD';
    if (request.method !== 'GET' && !head) {
      response.setHeader('Allow', 'GET, HEAD');
      send(response, 405, 'text/plain; charset=utf-8', 'method not allowed\n', false);
      return;
    }
    const path = (request.url ?? '/').split('?')[0];
    if (path === '/metrics') {
      const format = chooseFormat(request);
      if (format === null) {
        const offered = `${TEXT.mediaType}; version=${TEXT.version}, ${OPENMETRICS.mediaType}; version=${OPENMETRICS.version}`;
        send(response, 406, 'text/plain; charset=utf-8', `not acceptable: ${JSON.stringify(request.headers.accept)}; offered: ${offered}\n`, head);
        return;
      }
      const registry = format === OPENMETRICS ? openMetrics : text;
      registry.metrics().then(
        (body) => send(response, 200, registry.contentType, body, head),
        (error: Error) => send(response, 500, 'text/plain; charset=utf-8', `collecting metrics failed: ${error.message}\n`, head),
      );
    } else if (path === '/health') {
      const snapshot = sampler.latest();
      const ageMs = snapshot ? Date.now() - snapshot.timestamp : Number.POSITIVE_INFINITY;
      if (snapshot && ageMs <= staleAfterMs) {
        send(response, 200, 'text/plain; charset=utf-8', `ok: latest sample ${(ageMs / 1000).toFixed(3)}s old (pass ${snapshot.sequence})\n`, head);
      } else {
        const why = snapshot
          ? `latest sample ${(ageMs / 1000).toFixed(3)}s old, more than ${staleAfterMs / 1000}s (pass ${snapshot.sequence})`
          : 'no sample yet';
        send(response, 503, 'text/plain; charset=utf-8', `stale: ${why}\n`, head);
      }
    } else if (path === '/') {
      send(response, 200, 'text/html; charset=utf-8', INDEX, head);
    } else {
      send(response, 404, 'text/plain; charset=utf-8', 'not found: try /metrics or /health\n', head);
    }
  });
  server.keepAliveTimeout = 65_000; // longer than Prometheus's idle connection reuse

  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(options.listen.port, options.listen.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
  } catch (error) {
    sampler.close();
    await observing;
    const err = error as NodeJS.ErrnoException;
    const why = err.code === 'EADDRINUSE' ? 'address already in use' : err.code === 'EACCES' ? 'permission denied' : err.message;
    throw new CliError(`cannot listen on ${formatAddress(options.listen)}: ${why}`, EXIT_FAILURE);
  }

  const address = server.address();
  const bound = typeof address === 'object' && address ? { host: address.address, port: address.port } : options.listen;
  const count = sampler.devices.length;
  process.stderr.write(
    `vramguard serve: listening on http://${formatAddress(bound)}/metrics (${count} GPU${count === 1 ? '' : 's'}, sampling every ${options.intervalMs / 1000}s${options.processes ? ', per-process series' : ''})\n`,
  );

  await new Promise<void>((resolve) => {
    const removeSignals = onStopSignal(() => {
      removeSignals();
      resolve();
    });
  });
  server.close();
  server.closeAllConnections();
  sampler.close();
  await observing;
  return EXIT_OK;
}
