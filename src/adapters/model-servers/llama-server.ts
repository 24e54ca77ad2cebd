// llama.cpp's server in router mode (started without a model): GET /models lists the models and their
// status, POST /models/load and /models/unload take { model }. Each loaded model runs in a child
// process of the router, so NVML accounts every model by its own process.
import { readFileSync } from 'node:fs';

import type { VramGuard } from '../../guard';
import { baseUrl, ModelServerError, requestJson, type ServerEndpoint } from './http';
import { nvmlBytesAfter, serverProcesses } from './nvml-bytes';
import type { ModelServerDriver } from './remote-models';

export interface LlamaServerRouterOptions extends ServerEndpoint {
  /** The router's pid: a model's bytes are NVML's for the router's child process serving it. */
  pid?: number;
  /** Picks a model's processes among the router's descendants. Default: those whose command line names it. */
  processesOf?: (model: string, descendants: number[]) => number[];
  /** How long to wait for a load or unload to show in /models, and for NVML to show the model. Default 60 s. */
  settleTimeoutMs?: number;
}

interface RouterModel {
  id?: string;
  status?: { value?: string } | string;
}

function statusOf(m: RouterModel): string | undefined {
  return typeof m.status === 'string' ? m.status : m.status?.value;
}

function commandLine(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ');
  } catch {
    return '';
  }
}

export class LlamaServerRouterDriver implements ModelServerDriver {
  readonly name = 'llama.cpp router';
  private readonly endpoint: ServerEndpoint;
  private readonly settleTimeoutMs: number;

  constructor(private readonly options: LlamaServerRouterOptions) {
    this.endpoint = { url: baseUrl('llama.cpp router', options?.url), timeoutMs: options.timeoutMs };
    this.settleTimeoutMs = options.settleTimeoutMs ?? 60_000;
  }

  async models(): Promise<RouterModel[]> {
    const body = (await requestJson(this.name, this.endpoint, 'GET', '/models')) as { data?: RouterModel[] } | undefined;
    if (!body || !Array.isArray(body.data)) throw new ModelServerError(this.name, 'GET /models', 200, 'expected { data: [...] }');
    return body.data;
  }

  async loaded(): Promise<Set<string>> {
    return new Set((await this.models()).filter((m) => statusOf(m) === 'loaded').map((m) => m.id!));
  }

  async load(model: string): Promise<void> {
    await requestJson(this.name, this.endpoint, 'POST', '/models/load', { model });
    await this.settle(model, (status) => status === 'loaded', 'POST /models/load');
  }

  async unload(model: string): Promise<void> {
    await requestJson(this.name, this.endpoint, 'POST', '/models/unload', { model });
    await this.settle(model, (status) => status !== 'loaded' && status !== 'loading' && status !== 'unloading', 'POST /models/unload');
  }

  /** NVML's bytes for the model's own process (needs the router's pid), once it shows. */
  async measure(model: string, since: number, guard: VramGuard): Promise<number | null> {
    const { pid } = this.options;
    if (pid === undefined) return null;
    const pick = this.options.processesOf ?? ((m: string, pids: number[]) => pids.filter((p) => commandLine(p).includes(m)));
    const pids = () => pick(model, serverProcesses(pid).filter((p) => p !== pid));
    return nvmlBytesAfter(guard, pids, since, (bytes) => bytes > 0, this.settleTimeoutMs);
  }

  /** Polls /models until the model's status satisfies done (the router loads in the background). */
  private async settle(model: string, done: (status: string | undefined) => boolean, what: string): Promise<void> {
    const deadline = Date.now() + this.settleTimeoutMs;
    for (;;) {
      const entry = (await this.models()).find((m) => m.id === model);
      if (!entry) throw new ModelServerError(this.name, what, null, `the router lists no model ${JSON.stringify(model)}`);
      const status = statusOf(entry);
      if (done(status)) return;
      if (status === 'failed' || status === 'error') throw new ModelServerError(this.name, what, null, `${model} is ${status}`);
      if (Date.now() >= deadline) throw new ModelServerError(this.name, what, null, `${model} still ${String(status)} after ${this.settleTimeoutMs} ms`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
}
