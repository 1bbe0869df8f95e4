/**
 * Model inputs and their checks. Everything here runs before any compute, so a
 * malformed batch fails with a clear message instead of a shape error deep in
 * a layer: placeholder runs must sit between [SOI] and [EOI] and match the
 * images given one for one, sample boundaries must cover the sequence, labels
 * must align with the tokens.
 *
 * A packed batch is one token stream [T]: the rows of a [B, S] batch laid end
 * to end, each row holding several samples plus optional padding. `cuSeqlens`
 * marks the samples (and padding runs) so attention never crosses them;
 * positions restart at 0 in each.
 */
import type { SeedVLConfig } from './config.ts';
import { type ImageGrid, imageSegments } from './vision.ts';
import type { Tensor } from '../../tensor/index.ts';

export const IGNORE_INDEX = -100;

/** Patchified images and video frames, in their order of appearance in the token stream. */
export interface ImageBatch {
  /** [Σ h·w, 3·14·14], each image in merge-window patch order (src/processing/patchify.ts). */
  pixelValues: Tensor;
  /** Grid of each image in patches; a video frame is one image. */
  grids: ImageGrid[];
}

export interface ModelInputs {
  /** Token ids of every sample, packed end to end: [T]. */
  inputIds: Int32Array | readonly number[];
  /** Sample boundaries [0, …, T] in the packed stream; default one sample. */
  cuSeqlens?: readonly number[];
  images?: ImageBatch;
  /** Target token for each position (already shifted; -100 = no loss): [T]. */
  labels?: Int32Array | readonly number[];
}

export function toInt32(ids: Int32Array | readonly number[], what: string): Int32Array {
  if (ids instanceof Int32Array) return ids;
  if (!Array.isArray(ids)) throw new TypeError(`${what} must be an Int32Array or an array of integers`);
  const out = new Int32Array(ids.length);
  ids.forEach((v, i) => {
    if (!Number.isInteger(v) || Math.abs(v) > 0x7fffffff) throw new RangeError(`${what}[${i}] = ${v} is not an int32 integer`);
    out[i] = v;
  });
  return out;
}

/** Validates sample boundaries for T tokens (default [0, T]). */
export function checkSegments(cuSeqlens: readonly number[] | undefined, T: number): number[] {
  const cu = cuSeqlens ? [...cuSeqlens] : [0, T];
  if (cu.length < 2 || cu[0] !== 0 || cu[cu.length - 1] !== T || cu.some((c, i) => !Number.isInteger(c) || (i > 0 && c < cu[i - 1]))) {
    throw new RangeError(`cuSeqlens must be non-decreasing integers from 0 to ${T} (the token count), got [${cu}]`);
  }
  return cu;
}

/** Positions 0, 1, … restarting at each sample boundary. */
export function positionsFor(cuSeqlens: readonly number[]): Int32Array {
  const T = cuSeqlens[cuSeqlens.length - 1];
  const pos = new Int32Array(T);
  for (let s = 0; s + 1 < cuSeqlens.length; s++) for (let t = cuSeqlens[s]; t < cuSeqlens[s + 1]; t++) pos[t] = t - cuSeqlens[s];
  return pos;
}

/**
 * Boundaries of a [B, S] batch flattened row-major, given each row's sample
 * lengths; a row's unused tail becomes a padding segment of its own.
 */
export function rowsToCuSeqlens(rowSamples: readonly (readonly number[])[], seqLen: number): number[] {
  const cu = [0];
  rowSamples.forEach((samples, r) => {
    const used = samples.reduce((a, b) => a + b, 0);
    if (used > seqLen || samples.some((n) => !Number.isInteger(n) || n < 1)) {
      throw new RangeError(`row ${r}: sample lengths [${samples}] must be positive and fit in ${seqLen} tokens`);
    }
    for (const n of samples) cu.push(cu[cu.length - 1] + n);
    if (used < seqLen) cu.push(cu[cu.length - 1] + seqLen - used);
  });
  return cu;
}

/**
 * Next-token targets inside each sample: labels[t] = ids[t+1], and -100 at each
 * sample's last token (no target crosses a sample boundary). With `trainOn`, a
 * mask over target positions, labels[t] is -100 wherever trainOn[t+1] is false
 * (prompt tokens, image placeholders, padding).
 */
export function nextTokenLabels(ids: Int32Array, cuSeqlens: readonly number[], trainOn?: ArrayLike<boolean | number>): Int32Array {
  const labels = new Int32Array(ids.length).fill(IGNORE_INDEX);
  for (let s = 0; s + 1 < cuSeqlens.length; s++) {
    for (let t = cuSeqlens[s]; t + 1 < cuSeqlens[s + 1]; t++) {
      if (!trainOn || trainOn[t + 1]) labels[t] = ids[t + 1];
    }
  }
  return labels;
}

export interface TokenSlots {
  /** Positions of image placeholders, in order (image 0's tokens first). */
  image: Int32Array;
  /** All other positions. */
  text: Int32Array;
}

/**
 * Finds the image placeholders and checks them against the images: each run
 * of placeholders sits right after [SOI] and right before [EOI], inside one
 * sample, and run i holds exactly the (h/2)·(w/2) tokens of image i.
 */
export function locateImageTokens(cfg: SeedVLConfig, ids: Int32Array, cuSeqlens: readonly number[], images?: ImageBatch): TokenSlots {
  const grids = images?.grids ?? [];
  if (images) {
    if (!Array.isArray(images.grids) || images.grids.length === 0) throw new RangeError('images: grids must list at least one image');
    imageSegments(cfg.vision, images.grids, images.pixelValues.shape[0]); // sizes multiple of 28, patch count
  }
  const runs: [number, number][] = [];
  for (let t = 0; t < ids.length; t++) {
    if (ids[t] !== cfg.imageTokenId) continue;
    const start = t;
    while (t + 1 < ids.length && ids[t + 1] === cfg.imageTokenId) t++;
    runs.push([start, t + 1]);
  }
  if (runs.length !== grids.length) {
    throw new RangeError(
      `the token sequence has ${runs.length} image placeholder run(s) (token ${cfg.imageTokenId} between [SOI] and [EOI]) ` +
        `but ${grids.length} image(s) were given`,
    );
  }
  let sample = 0;
  let imageCount = 0;
  runs.forEach(([a, b], i) => {
    const g = grids[i];
    const want = (g.h / cfg.vision.mergeSize) * (g.w / cfg.vision.mergeSize);
    if (b - a !== want) {
      throw new RangeError(`image ${i}: ${b - a} placeholder tokens at positions ${a}..${b - 1}, but its ${g.w}×${g.h}-patch grid gives ${want} LLM tokens`);
    }
    if (a === 0 || ids[a - 1] !== cfg.soiTokenId || b >= ids.length || ids[b] !== cfg.eoiTokenId) {
      throw new RangeError(`image ${i}: its placeholders at positions ${a}..${b - 1} must be preceded by [SOI] (${cfg.soiTokenId}) and followed by [EOI] (${cfg.eoiTokenId})`);
    }
    while (cuSeqlens[sample + 1] <= a) sample++;
    if (b > cuSeqlens[sample + 1]) throw new RangeError(`image ${i}: its placeholders at positions ${a}..${b - 1} cross a sample boundary (${cuSeqlens[sample + 1]})`);
    imageCount += b - a;
  });
  const image = new Int32Array(imageCount);
  const text = new Int32Array(ids.length - imageCount);
  let ii = 0;
  let ti = 0;
  for (let t = 0; t < ids.length; t++) {
    if (ids[t] === cfg.imageTokenId) image[ii++] = t;
    else text[ti++] = t;
  }
  return { image, text };
}
