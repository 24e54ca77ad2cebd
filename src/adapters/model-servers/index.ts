// vramguard/model-servers: models that live in another server process, under the guard.
export { RemoteModel, RemoteModelServer } from './remote-models';
export type { ModelServerDriver, RemoteModelOptions, RemoteModelServerOptions } from './remote-models';
export { OllamaDriver } from './ollama';
export type { OllamaOptions } from './ollama';
export { LlamaServerRouterDriver } from './llama-server';
export type { LlamaServerRouterOptions } from './llama-server';
export { VllmSleepDriver } from './vllm';
export type { VllmOptions } from './vllm';
export { ModelServerError } from './http';
export type { ServerEndpoint } from './http';
