/** Shared fixtures: a byte-level tokenizer and tiny models with scripted continuations. */
import { Tokenizer, buildTokenizerJson } from '../../src/processing/index.ts';
import { TinyLM, type TinyLMOptions } from './_tiny_lm.ts';

/** Pure byte-level BPE (ids 0–255 are bytes) plus the Seed special tokens from 256. */
export const tokenizer = new Tokenizer(buildTokenizerJson({}));
export const EOS = tokenizer.requireId('[EOS]');
export const IM_END = tokenizer.requireId('<|im_end|>');
export const THINK = tokenizer.requireId('<think>');
export const END_THINK = tokenizer.requireId('</think>');

export const ids = (text: string): number[] => tokenizer.encode(text);

/** Bigram pairs that make the model continue `after` with `text`, then `end` (if given). */
export function chain(after: number, text: string | number[], end?: number): [number, number][] {
  const seq = [after, ...(typeof text === 'string' ? ids(text) : text), ...(end !== undefined ? [end] : [])];
  const pairs: [number, number][] = [];
  for (let i = 0; i + 1 < seq.length; i++) pairs.push([seq[i]!, seq[i + 1]!]);
  return pairs;
}

export function tinyModel(o: Partial<TinyLMOptions> = {}): TinyLM {
  return new TinyLM({ vocabSize: tokenizer.vocabSize, dim: 32, seed: 7, ...o });
}

/** A prompt as model inputs. */
export const prompt = (text: string): { inputIds: Int32Array } => ({ inputIds: Int32Array.from(ids(text)) });
