/**
 * Image decoding: PNG, JPEG, WebP and GIF (first frame) through sharp/libvips, with
 * EXIF orientation applied and alpha flattened onto white, into packed RGB bytes.
 * All coordinates the model returns refer to this oriented image, which is what a
 * person sees when they open the file.
 */
import sharp, { type Metadata } from 'sharp';
import { MediaError } from './errors.ts';
import type { RgbImage } from './resample.ts';
import { stat } from 'node:fs/promises';
import { localPath, readMediaBytes, type FetchOptions, type MediaSource } from './source.ts';

export type ImageFormat = 'jpeg' | 'png' | 'webp' | 'gif';
export const SUPPORTED_IMAGE_FORMATS: readonly ImageFormat[] = ['jpeg', 'png', 'webp', 'gif'];

export interface LoadImageOptions extends FetchOptions {
  /** Reject decoded images with more pixels than this (decompression bombs). Default 16384². */
  maxInputPixels?: number;
}

export interface DecodedImage extends RgbImage {
  format: ImageFormat;
  /** EXIF orientation found in the file (1 when absent); already applied to the pixels. */
  exifOrientation: number;
  /** Whether the file had an alpha channel (flattened onto white). */
  hadAlpha: boolean;
}

export const DEFAULT_MAX_INPUT_PIXELS = 16384 * 16384;

/** Load and decode an image from a path, URL, data: URL or bytes. */
export async function loadImage(source: MediaSource, opts: LoadImageOptions = {}): Promise<DecodedImage> {
  const { bytes, label } = await readMediaBytes(source, opts);
  return decodeImage(bytes, label, opts);
}

/**
 * Size and format from the header only (no pixel decoding), with EXIF orientations
 * 5–8 swapping width and height as decoding would.
 */
export async function probeImage(source: MediaSource, opts: FetchOptions = {}): Promise<{ width: number; height: number; format: ImageFormat; exifOrientation: number }> {
  // A local file is read by libvips from its header only, so a large video is not loaded.
  const path = localPath(source);
  let input: string | Uint8Array;
  let label: string;
  if (path !== undefined) {
    label = path;
    const st = await stat(path).catch((e: unknown) => {
      throw new MediaError('not_found', 'cannot read file', label, { cause: e });
    });
    if (!st.isFile()) throw new MediaError('not_found', 'not a regular file', label);
    if (st.size === 0) throw new MediaError('decode_failed', 'empty input', label);
    input = path;
  } else {
    ({ bytes: input, label } = await readMediaBytes(source, opts));
    if (input.byteLength === 0) throw new MediaError('decode_failed', 'empty input', label);
  }
  const { meta, format } = await readMetadata(input, label);
  const o = meta.orientation ?? 1;
  const swap = o >= 5 && o <= 8;
  return { width: swap ? meta.height : meta.width, height: swap ? meta.width : meta.height, format, exifOrientation: o };
}

/** Header metadata of an encoded image, refusing formats we do not decode and zero-size images. */
async function readMetadata(input: string | Uint8Array, label: string): Promise<{ meta: Metadata & { width: number; height: number }; format: ImageFormat }> {
  let meta: Metadata;
  try {
    meta = await sharp(input, { limitInputPixels: false }).metadata();
  } catch (e) {
    throw classifySharpError(e, label);
  }
  const format = meta.format as string | undefined;
  if (!format || !(SUPPORTED_IMAGE_FORMATS as readonly string[]).includes(format)) {
    throw new MediaError('unsupported_format', `unsupported image format ${format ?? 'unknown'}; expected one of ${SUPPORTED_IMAGE_FORMATS.join(', ')}`, label);
  }
  if (!meta.width || !meta.height) throw new MediaError('too_small', `image has zero size (${meta.width ?? 0}x${meta.height ?? 0})`, label);
  return { meta: meta as Metadata & { width: number; height: number }, format: format as ImageFormat };
}

/** Decode encoded image bytes. `label` names the input in error messages. */
export async function decodeImage(bytes: Uint8Array, label = `<buffer ${bytes.byteLength} bytes>`, opts: LoadImageOptions = {}): Promise<DecodedImage> {
  if (bytes.byteLength === 0) throw new MediaError('decode_failed', 'empty input', label);
  const limitInputPixels = opts.maxInputPixels ?? DEFAULT_MAX_INPUT_PIXELS;
  const { meta, format } = await readMetadata(bytes, label);
  if (meta.width * meta.height > limitInputPixels) {
    throw new MediaError('too_large', `image of ${meta.width}x${meta.height} pixels exceeds the ${limitInputPixels}-pixel limit`, label);
  }
  try {
    const { data, info } = await sharp(bytes, { limitInputPixels, pages: 1, failOn: 'error' })
      .autoOrient()
      .flatten({ background: { r: 255, g: 255, b: 255 } })
      .toColourspace('srgb')
      .removeAlpha()
      .raw({ depth: 'uchar' })
      .toBuffer({ resolveWithObject: true });
    if (info.channels !== 3) throw new MediaError('decode_failed', `decoder returned ${info.channels} channels, expected 3`, label);
    return {
      width: info.width,
      height: info.height,
      data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
      format,
      exifOrientation: meta.orientation ?? 1,
      hadAlpha: meta.hasAlpha ?? false,
    };
  } catch (e) {
    if (e instanceof MediaError) throw e;
    throw classifySharpError(e, label);
  }
}

function classifySharpError(e: unknown, label: string): MediaError {
  const msg = e instanceof Error ? e.message : String(e);
  if (/unsupported image format/i.test(msg)) {
    return new MediaError('unsupported_format', 'not a recognised image format', label, { cause: e });
  }
  if (/pixel limit/i.test(msg)) return new MediaError('too_large', msg, label, { cause: e });
  return new MediaError('decode_failed', `image could not be decoded: ${msg.split('\n')[0]}`, label, { cause: e });
}

/** Encode packed RGB as PNG (used by drawing and debugging). */
export async function encodePng(img: RgbImage): Promise<Buffer> {
  return sharp(Buffer.from(img.data.buffer, img.data.byteOffset, img.data.byteLength), {
    raw: { width: img.width, height: img.height, channels: 3 },
  })
    .png()
    .toBuffer();
}
