// Ollama's documented API: GET /api/ps lists the running models with size_vram; POST /api/generate
// with only a model loads it, with keep_alive: 0 unloads it.
import type { ModelServerDriver } from './remote-models';
import { baseUrl, ModelServerError, requestJson, type ServerEndpoint } from './http';

export interface OllamaOptions extends ServerEndpoint {
  /**
   * keep_alive for loads. Default -1 (Ollama keeps the model until told): the guard decides when it
   * goes. Give a duration ('10m') to let Ollama expire it too; reconcile() then notices.
   */
  keepAlive?: string | number;
}

interface PsModel {
  name?: string;
  model?: string;
  size?: number;
  size_vram?: number;
}

export class OllamaDriver implements ModelServerDriver {
  readonly name = 'ollama';
  private readonly endpoint: ServerEndpoint;
  private readonly keepAlive: string | number;

  constructor(options: OllamaOptions) {
    this.endpoint = { url: baseUrl('ollama', options?.url), timeoutMs: options.timeoutMs };
    this.keepAlive = options.keepAlive ?? -1;
  }

  /** The running models, as /api/ps lists them. */
  async ps(): Promise<PsModel[]> {
    const body = (await requestJson(this.name, this.endpoint, 'GET', '/api/ps')) as { models?: PsModel[] } | undefined;
    if (!body || !Array.isArray(body.models)) throw new ModelServerError(this.name, 'GET /api/ps', 200, 'expected { models: [...] }');
    return body.models;
  }

  async loaded(): Promise<Set<string>> {
    const names = new Set<string>();
    for (const m of await this.ps()) {
      if (m.name) names.add(m.name);
      if (m.model) names.add(m.model);
    }
    return names;
  }

  async load(model: string): Promise<void> {
    await requestJson(this.name, this.endpoint, 'POST', '/api/generate', { model, keep_alive: this.keepAlive });
  }

  async unload(model: string): Promise<void> {
    await requestJson(this.name, this.endpoint, 'POST', '/api/generate', { model, keep_alive: 0 });
  }

  /** Ollama's own figure: size_vram of the model in /api/ps. */
  async measure(model: string): Promise<number | null> {
    const entry = (await this.ps()).find((m) => m.name === model || m.model === model);
    return typeof entry?.size_vram === 'number' ? entry.size_vram : null;
  }
}
