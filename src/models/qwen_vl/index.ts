/** Qwen2-VL / Qwen2.5-VL / Qwen3-VL / Qwen3-VL-MoE from Hugging Face directories (docs/qwen.md). */
export * from './config.ts';
export { sanitizeNames, type WeightRef } from './sanitize.ts';
export { WeightStore, WeightError, readerSource, type TensorSource, type WeightStoreOptions } from './weights.ts';
export { buildQwenModel } from './build.ts';
export { loadQwenModel, readQwenConfig, type LoadQwenOptions, type LoadedQwen } from './load.ts';
export { QwenVLModel, QwenCache, type QwenInputs, type VisionBatch, type ForwardOptions } from './model.ts';
export { QwenVisionTower, QwenVisionBlock, PatchMerger, type Trace, type VisionOutput } from './vision.ts';
export { QwenTextModel, QwenDecoderLayer, QwenTextAttention, type Deepstack } from './language.ts';
export { MediaCursor, rowPositions, type PositionConvention, type RopeIndexSpec, type RowMedia } from './rope_index.ts';
export { frameSegments, windowLayout, bilinearTaps, type Grid3 } from './vision_layout.ts';
export { QwenVLRuntime, imageBatch, type QwenRuntimeOptions } from './runtime.ts';
export { QWEN2_VL_CHAT, QWEN3_VL_CHAT, templateFor, qwen3Timestamp, formatFixed1 } from './template.ts';
export { parseQwenObjects, coordSpace, type QwenObjects, type QwenImageSizes } from './parse.ts';
export { hubTensors, hubParamCount, type HubTensor } from './hub_layout.ts';
export { writeRandomCheckpoint, type RandomCheckpointOptions } from './random_checkpoint.ts';
export { runGolden, discoverGolden, groupMax, type GoldenReport, type GoldenOptions } from './golden.ts';
export { checkGoldenCase, type CaseResult } from './golden_case.ts';
