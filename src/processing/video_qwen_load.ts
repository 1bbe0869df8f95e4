/**
 * Loading a chat video part for a template that takes whole videos (Qwen): the
 * frames video_qwen.ts plans, decoded by ffmpeg (files, URLs, bytes) or taken
 * from a caller's frame list, then patchified in temporal patches.
 */
import { ChatError, MediaError } from './errors.ts';
import type { ContentPart } from './chat.ts';
import { loadImage, type LoadImageOptions } from './image.ts';
import type { RgbImage } from './resample.ts';
import { decodeFrames, probeVideo, withLocalFile } from './video.ts';
import { patchifyQwenVideo, planQwenVideo, qwenVideoSize, resizeFrames, type QwenVideo, type QwenVideoOptions, type QwenVideoStyle } from './video_qwen.ts';
import type { VisionPreprocessConfig } from './vision_config.ts';
import type { FetchOptions } from './source.ts';

export interface LoadedQwenVideo {
  video: QwenVideo;
  original: { width: number; height: number };
}

type VideoPart = Extract<ContentPart, { type: 'video_url' } | { type: 'video_frames' }>;

/** Decode and process one video part; errors name the message. */
export async function loadQwenVideoPart(part: VideoPart, messageIndex: number, style: QwenVideoStyle, cfg: VisionPreprocessConfig, o: FetchOptions & LoadImageOptions = {}, vopts: QwenVideoOptions = {}): Promise<LoadedQwenVideo> {
  const where = `message ${messageIndex}`;
  try {
    if (part.type === 'video_url') {
      const v = typeof part.video_url === 'string' ? { url: part.video_url } : part.video_url;
      if (!v?.url) throw new ChatError('missing_media', `${where}: video_url has no url`);
      const vo: QwenVideoOptions = { ...vopts, ...(v.fps !== undefined ? { fps: v.fps } : {}) };
      return await withLocalFile(v.url, o, async (path, label) => {
        const probe = await probeVideo(path, label);
        const plan = planQwenVideo(style, probe.totalFrames, probe.nativeFps, probe.width, probe.height, cfg, vo);
        const planned = plan.indices.map((index, i) => ({ index, t: plan.times[i]!, timestamp: '' }));
        const frames: RgbImage[] = [];
        const times: number[] = [];
        for await (const f of decodeFrames(path, probe, planned, plan.resized, cfg.resample, label)) (frames.push(f.image), times.push(f.t));
        return { video: patchifyQwenVideo(frames, times, plan.sampledFps, cfg), original: { width: probe.width, height: probe.height } };
      });
    }
    if (!part.frames?.length) throw new ChatError('missing_media', `${where}: video_frames has no frames`);
    const images = await Promise.all(part.frames.map(async (f) => (isRgb(f.image) ? f.image : await loadImage(f.image, o))));
    const first = images[0]!;
    if (images.some((im) => im.width !== first.width || im.height !== first.height)) {
      throw new MediaError('invalid_input', 'all frames of a video must share one size');
    }
    const times = part.frames.map((f) => f.t);
    const span = times[times.length - 1]! - times[0]!;
    // A frame list carries no rate: take it from the timestamps (2 fps, the references' default, for one frame).
    const fps = times.length > 1 && span > 0 ? (times.length - 1) / span : 2;
    const size = qwenVideoSize(style, images.length, first.width, first.height, cfg, vopts);
    return { video: patchifyQwenVideo(resizeFrames(images, size, cfg), times, fps, cfg), original: { width: first.width, height: first.height } };
  } catch (e) {
    if (e instanceof MediaError) throw new MediaError(e.code, `${where}: ${e.message}`);
    throw e;
  }
}

function isRgb(x: unknown): x is RgbImage {
  return typeof x === 'object' && x !== null && 'data' in x && 'width' in x && !(x instanceof Uint8Array);
}
