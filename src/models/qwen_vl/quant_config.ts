/**
 * The `quantization_config` block of a Qwen-VL directory written by
 * `seedvl quantize` (quant_checkpoint.ts):
 *
 *   "quantization_config": { "quant_method": "seedvl", "bits": 4, "group_size": 32,
 *                            "modules": ["model.layers.0.self_attn.q_proj", …] }
 *
 * Each listed Hub module stores its Linear weight as `<module>.qweight`
 * (int8 [N, K], or uint8 [N, K/2] with two int4 values per byte) and
 * `<module>.scales` (float16 [N, K/G]) instead of `<module>.weight`.
 * `group_size` is the one asked for; a layer whose input width it does not
 * divide uses a smaller one (quantize.ts qwenGroupSizeFor), which the
 * loader reads off the scales' shape. Other quantisation methods found on
 * the Hub (AWQ, GPTQ, FP8, …) are refused by name.
 */
import type { QuantBits } from '../../tensor/ops/quant.ts';
import { ConfigError } from './config.ts';

export const QWEN_QUANT_METHOD = 'seedvl';

export interface QwenQuantConfig {
  quant_method: typeof QWEN_QUANT_METHOD;
  bits: QuantBits;
  group_size: number;
  /** Hub module names whose weight is stored quantised. */
  modules: string[];
}

/** config.json's quantization_config, checked (null when the directory is not quantised). `file` names config.json in errors. */
export function parseQwenQuantConfig(json: Record<string, unknown>, file: string): QwenQuantConfig | null {
  const q = json['quantization_config'];
  if (q === undefined || q === null) return null;
  const key = (k: string): string => `${file}: quantization_config.${k}`;
  if (typeof q !== 'object' || Array.isArray(q)) throw new ConfigError(`${file}: quantization_config must be an object`);
  const o = q as Record<string, unknown>;
  if (o['quant_method'] !== QWEN_QUANT_METHOD) {
    throw new ConfigError(`${key('quant_method')} is ${JSON.stringify(o['quant_method'] ?? null)}; only '${QWEN_QUANT_METHOD}' (written by seedvl quantize) can be loaded — `
      + 'use the unquantised checkpoint (optionally with --quantize 4|8)');
  }
  if (o['bits'] !== 4 && o['bits'] !== 8) throw new ConfigError(`${key('bits')} must be 4 or 8, got ${JSON.stringify(o['bits'] ?? null)}`);
  const g = o['group_size'];
  if (typeof g !== 'number' || !Number.isInteger(g) || g < 32 || g % 32 !== 0) throw new ConfigError(`${key('group_size')} must be a positive multiple of 32, got ${JSON.stringify(g ?? null)}`);
  const mods = o['modules'];
  if (!Array.isArray(mods) || mods.some((m) => typeof m !== 'string' || !m)) throw new ConfigError(`${key('modules')} must be a list of module names`);
  if (new Set(mods).size !== mods.length) throw new ConfigError(`${key('modules')} lists a module twice`);
  return { quant_method: QWEN_QUANT_METHOD, bits: o['bits'], group_size: g, modules: mods as string[] };
}
