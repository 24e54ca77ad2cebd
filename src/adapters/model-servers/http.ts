// JSON over HTTP to a model server, with one-line typed errors naming the server, the endpoint and
// the status. Bounded: a server that does not answer in time is an error, not a hang.
import { VramguardError } from '../../errors';

export class ModelServerError extends VramguardError {
  constructor(
    readonly server: string,
    readonly endpoint: string,
    readonly status: number | null,
    detail: string,
  ) {
    super('MODEL_SERVER', `${server} ${endpoint}: ${status === null ? '' : `HTTP ${status}: `}${detail}`);
  }
}

export interface ServerEndpoint {
  /** Base URL, e.g. http://127.0.0.1:11434. */
  url: string;
  /** Per request, default 60 s (loading a model may take a while). */
  timeoutMs?: number;
}

/** Validates a base URL once, at construction. */
export function baseUrl(option: string, url: unknown): string {
  if (typeof url !== 'string') throw new ModelServerError(option, 'url', null, `expected a URL string, got ${typeof url}`);
  try {
    const parsed = new URL(url);
    if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw new Error(`protocol ${parsed.protocol}`);
  } catch (error) {
    throw new ModelServerError(option, 'url', null, `bad URL ${JSON.stringify(url)} (${(error as Error).message})`);
  }
  return url.replace(/\/+$/, '');
}

/** Sends a request; resolves to the parsed JSON body (undefined when the body is empty). */
export async function requestJson(
  server: string,
  endpoint: ServerEndpoint,
  method: 'GET' | 'POST',
  path: string,
  body?: unknown,
): Promise<unknown> {
  const where = `${method} ${path}`;
  let response: Response;
  try {
    response = await fetch(`${endpoint.url}${path}`, {
      method,
      headers: body === undefined ? undefined : { 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(endpoint.timeoutMs ?? 60_000),
    });
  } catch (error) {
    const cause = (error as { cause?: { code?: string } }).cause?.code ?? (error as Error).message;
    throw new ModelServerError(server, where, null, `no answer from ${endpoint.url} (${cause})`);
  }
  const text = await response.text();
  if (!response.ok) throw new ModelServerError(server, where, response.status, text.slice(0, 200) || response.statusText);
  if (text.length === 0) return undefined;
  try {
    return JSON.parse(text);
  } catch {
    throw new ModelServerError(server, where, response.status, `expected JSON, got ${JSON.stringify(text.slice(0, 80))}`);
  }
}
