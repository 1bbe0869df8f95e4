/** Providers: one interface (types.ts), the local engine and remote OpenAI-compatible endpoints. */
export * from './types.ts';
export { LocalProvider, toProviderError, type LocalProviderOptions } from './local.ts';
export { RemoteProvider, parseSse, type RemoteProviderOptions } from './remote.ts';
