// vLLM with sleep mode (--enable-sleep-mode; the endpoints need VLLM_SERVER_DEV_MODE=1): POST
// /sleep?level=1 offloads the weights to CPU memory and drops the KV cache, level=2 drops both;
// POST /wake_up restores; GET /is_sleeping tells. One server serves one model: the model is the session.
import { InvalidOptionError } from '../../errors';
import type { VramGuard } from '../../guard';
import { baseUrl, ModelServerError, requestJson, type ServerEndpoint } from './http';
import { nvmlBytesAfter, serverProcesses } from './nvml-bytes';
import type { ModelServerDriver } from './remote-models';

export interface VllmOptions extends ServerEndpoint {
  /** The served model's name (as in its OpenAI API). */
  model: string;
  /** Sleep level for evictions: 1 (default; fast wake-up, needs CPU memory for the weights) or 2. */
  level?: 1 | 2;
  /** The server's pid: the model's bytes are NVML's for the server and its workers once awake. */
  pid?: number;
  /** How long to wait for NVML to show the woken server. Default 60 s. */
  settleTimeoutMs?: number;
}

export class VllmSleepDriver implements ModelServerDriver {
  readonly name = 'vllm';
  private readonly endpoint: ServerEndpoint;
  private readonly level: 1 | 2;

  constructor(private readonly options: VllmOptions) {
    this.endpoint = { url: baseUrl('vllm', options?.url), timeoutMs: options.timeoutMs };
    if (typeof options.model !== 'string' || options.model.length === 0) throw new InvalidOptionError('model', 'vllm: expected the served model name');
    const level = options.level ?? 1;
    if (level !== 1 && level !== 2) throw new InvalidOptionError('level', `vllm: expected 1 or 2, got ${JSON.stringify(level)}`);
    this.level = level;
  }

  async isSleeping(): Promise<boolean> {
    const body = (await requestJson(this.name, this.endpoint, 'GET', '/is_sleeping')) as { is_sleeping?: unknown } | undefined;
    if (typeof body?.is_sleeping !== 'boolean') throw new ModelServerError(this.name, 'GET /is_sleeping', 200, 'expected { is_sleeping: boolean }');
    return body.is_sleeping;
  }

  async loaded(): Promise<Set<string>> {
    return new Set((await this.isSleeping()) ? [] : [this.options.model]);
  }

  async load(model: string): Promise<void> {
    this.check(model);
    await requestJson(this.name, this.endpoint, 'POST', '/wake_up');
  }

  async unload(model: string): Promise<void> {
    this.check(model);
    await requestJson(this.name, this.endpoint, 'POST', `/sleep?level=${this.level}`);
  }

  async measure(model: string, since: number, guard: VramGuard): Promise<number | null> {
    this.check(model);
    const { pid } = this.options;
    if (pid === undefined) return null;
    return nvmlBytesAfter(guard, () => serverProcesses(pid), since, (bytes) => bytes > 0, this.options.settleTimeoutMs ?? 60_000);
  }

  private check(model: string): void {
    if (model !== this.options.model) throw new InvalidOptionError('model', `vllm serves ${this.options.model}, not ${model}`);
  }
}
