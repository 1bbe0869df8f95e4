/** Seed1.5-VL: config, presets, accounting, the model and its checkpoints. */
export * from './config.ts';
export * from './presets.ts';
export * from './accounting.ts';
export { SeedViT, VisionBlock, VisionAttention, VisionMLP, imageSegments, type ImageGrid, type FloatDType } from './vision.ts';
export { Adapter } from './adapter.ts';
export { LanguageModel, DecoderLayer, type LanguageOutput, type LayerOutput } from './language.ts';
export { KVCache, type KVCacheOptions } from './kv_cache.ts';
export * from './inputs.ts';
export { SeedVLModel, type ModelOutput, type StepInputs, type ModelOptions } from './model.ts';
export { saveModel, loadModel, type SaveOptions } from './checkpoint.ts';
