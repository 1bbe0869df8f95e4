/** Public checkpoint I/O API (see docs/io.md). */
export { openSafetensors, saveSafetensors, SafetensorsFile, SafetensorsError, mmapStats, type GetOptions, type TensorEntry, type TensorMap, type MmapStats } from './safetensors.ts';
export { openCheckpoint, writeCheckpoint, CheckpointReader, CheckpointError, type CheckpointTensorInfo, type OpenCheckpointOptions, type WriteCheckpointOptions, type WrittenCheckpoint } from './checkpoint.ts';
export type { MapOptions } from './mapped_file.ts';
