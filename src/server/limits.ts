/**
 * Request limits checked before any model work: how many images and videos a
 * request may carry, which URL kinds are allowed (data: URLs always; http(s)
 * and local paths only when the server was started with the matching flag),
 * and how many frames a video may sample. Each failure names the field.
 */
import { planVideo } from '../processing/video.ts';
import { sourceKind } from '../processing/source.ts';
import { MediaError } from '../processing/errors.ts';
import type { ChatCompletionRequest } from '../providers/types.ts';
import { RequestValidationError } from './schema.ts';

export interface MediaLimits {
  /** Images per request (default 8). */
  maxImages: number;
  /** Videos per request (default 2). */
  maxVideos: number;
  /** Frames one video may sample (default 128). */
  maxFrames: number;
  /** Fetch http(s) media URLs (default false). */
  allowNetwork: boolean;
  /** Read local file paths / file:// URLs (default false). */
  allowLocalFiles: boolean;
  /** Decoded pixels above which an image is refused (default 40 M). */
  maxInputPixels: number;
  /** Largest encoded media size in bytes (default 20 MiB). */
  maxMediaBytes: number;
}

export const DEFAULT_LIMITS: MediaLimits = {
  maxImages: 8,
  maxVideos: 2,
  maxFrames: 128,
  allowNetwork: false,
  allowLocalFiles: false,
  maxInputPixels: 40_000_000,
  maxMediaBytes: 20 * 1024 * 1024,
};

function urlOf(v: string | { url: string }): string {
  return typeof v === 'string' ? v : v.url;
}

function checkUrl(url: string, param: string, l: MediaLimits): void {
  const kind = sourceKind(url);
  if (kind === 'http_url' && !l.allowNetwork) {
    throw new RequestValidationError(`invalid field '${param}': http(s) URLs are disabled on this server (start it with --allow-network); send the image as a data: URL`, param);
  }
  if (kind === 'file' && !l.allowLocalFiles) {
    throw new RequestValidationError(`invalid field '${param}': local file paths are disabled on this server (start it with --allow-local-files); send a data: URL`, param);
  }
}

/** Counts media and checks URL kinds; then plans every video (no decoding) to bound its frames. */
export async function checkMediaLimits(req: ChatCompletionRequest, l: MediaLimits): Promise<void> {
  let images = 0;
  const videos: { url: string; fps?: number; task?: string; param: string }[] = [];
  req.messages.forEach((m, i) => {
    if (typeof m.content === 'string') return;
    m.content.forEach((p, j) => {
      const base = `messages.${i}.content.${j}`;
      if (p.type === 'image_url') {
        images++;
        checkUrl(urlOf(p.image_url), `${base}.image_url.url`, l);
      } else if (p.type === 'video_url') {
        const v = typeof p.video_url === 'string' ? { url: p.video_url } : p.video_url;
        checkUrl(v.url, `${base}.video_url.url`, l);
        videos.push({ ...v, param: `${base}.video_url` } as never);
      }
    });
  });
  if (images > l.maxImages) throw new RequestValidationError(`too many images: ${images} in the request, at most ${l.maxImages}`, 'messages');
  if (videos.length > l.maxVideos) throw new RequestValidationError(`too many videos: ${videos.length} in the request, at most ${l.maxVideos}`, 'messages');
  for (const v of videos) {
    let plan;
    try {
      ({ plan } = await planVideo(v.url, {
        allowNetwork: l.allowNetwork,
        maxBytes: l.maxMediaBytes,
        ...(v.fps !== undefined ? { fps: v.fps } : {}),
        ...(v.task !== undefined ? { task: v.task as never } : {}),
      }));
    } catch (e) {
      if (e instanceof MediaError) throw new RequestValidationError(`invalid field '${v.param}': ${e.message}`, v.param);
      throw e;
    }
    if (plan.frames.length > l.maxFrames) {
      throw new RequestValidationError(
        `invalid field '${v.param}': the video samples ${plan.frames.length} frames, more than this server's budget of ${l.maxFrames}; send a shorter clip or a lower fps`, v.param);
    }
  }
}
