// The example servers' tests: waiting on conditions, and one request per connection.
import http from 'node:http';

/** Polls predicate every 20 ms until it holds; throws after timeoutMs. */
export async function until(predicate: () => boolean | Promise<boolean>, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await predicate())) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** One request on its own connection (no keep-alive races at shutdown). */
export function requestOn(port: number, method: string, path: string, body?: object): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method, path, agent: false, headers: { 'content-type': 'application/json' } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: text }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body ? JSON.stringify(body) : undefined);
  });
}

/** Appends every JSON line the stream writes to `into`. */
export function collectJsonLines<T>(stream: NodeJS.ReadableStream, into: T[]): void {
  let buffer = '';
  stream.on('data', (chunk: Buffer) => {
    buffer += chunk.toString();
    let newline: number;
    while ((newline = buffer.indexOf('\n')) >= 0) {
      into.push(JSON.parse(buffer.slice(0, newline)) as T);
      buffer = buffer.slice(newline + 1);
    }
  });
}
