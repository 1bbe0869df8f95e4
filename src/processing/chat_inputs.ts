/**
 * Chat request → model inputs: render with a template, load and preprocess every
 * image and video, tokenize text, and splice image blocks in place. The output is
 * plain arrays (the tensor engine wraps them later) plus, for every image or frame,
 * the size bookkeeping that maps model coordinates back to original pixels.
 */
import { ChatError, MediaError } from './errors.ts';
import { validateRequest, SEED_TEMPLATE, type ChatRequest, type ChatTemplate, type PromptSegment } from './chat.ts';
import { loadImage, type LoadImageOptions } from './image.ts';
import { patchifyFrames, type PatchGrid } from './patchify.ts';
import { preprocessRgb, type PreprocessOptions } from './preprocess.ts';
import type { RgbImage } from './resample.ts';
import type { Tokenizer } from './tokenizer.ts';
import { loadFrameList, loadVideo, type VideoClip } from './video.ts';
import { SEED_VISION, type VisionPreprocessConfig } from './vision_config.ts';
import { loadQwenVideoPart } from './video_qwen_load.ts';
import type { QwenVideoOptions } from './video_qwen.ts';

export interface VisionInput {
  /** 'video': a whole video in temporal patches (templates with a `video` hook, e.g. Qwen). */
  kind: 'image' | 'video_frame' | 'video';
  /** [nPatches, patchDim] float32, merge-window order. */
  pixelValues: Float32Array;
  shape: [number, number];
  grid: PatchGrid;
  tokenGrid: { rows: number; cols: number };
  tokens: number;
  original: { width: number; height: number };
  resized: { width: number; height: number };
  /** Position of the first image-pad token in inputIds. */
  tokenOffset: number;
  /** Index of the message the media came from. */
  messageIndex: number;
  /** Video frames: the `[t second]` text and the time in seconds. */
  timestamp?: string;
  t?: number;
  /** Whole videos: seconds per temporal patch (Qwen2.5-VL M-RoPE) and each patch's mean time. */
  secondPerGrid?: number;
  groupTimes?: number[];
}

export interface ModelInputs {
  inputIds: Int32Array;
  /** 1 at image-pad (and, for whole videos, video-pad) positions, 0 elsewhere. */
  visionMask: Uint8Array;
  vision: VisionInput[];
  thinking: 'enabled' | 'disabled';
}

export interface BuildInputsOptions extends PreprocessOptions, LoadImageOptions {
  template?: ChatTemplate;
  vision?: VisionPreprocessConfig;
  addGenerationPrompt?: boolean;
  /** Whole-video templates (Qwen): sampling and sizing overrides (fps, frame and pixel limits; see video_qwen.ts). */
  video?: QwenVideoOptions;
}

interface LoadedFrame {
  image: RgbImage;
  timestamp?: string;
  t?: number;
  /** Video frames are already at their planned size. */
  preSized: boolean;
  /** Size of the source frame, for mapping coordinates back (video frames). */
  original?: { width: number; height: number };
}

async function loadMedia(seg: Extract<PromptSegment, { type: 'media' }>, o: BuildInputsOptions): Promise<LoadedFrame[]> {
  const p = seg.part;
  const where = `message ${seg.messageIndex}`;
  switch (p.type) {
    case 'image':
      return [{ image: p.image, preSized: false }];
    case 'image_url': {
      const url = typeof p.image_url === 'string' ? p.image_url : p.image_url?.url;
      if (!url) throw new ChatError('missing_media', `${where}: image_url has no url`);
      return [{ image: await loadImage(url, o), preSized: false }];
    }
    case 'video_url': {
      const v = typeof p.video_url === 'string' ? { url: p.video_url } : p.video_url;
      if (!v?.url) throw new ChatError('missing_media', `${where}: video_url has no url`);
      const clip: VideoClip = await loadVideo(v.url, {
        ...o,
        ...(v.fps !== undefined ? { fps: v.fps } : {}),
        ...(v.task !== undefined ? { task: v.task } : {}),
        factor: (o.vision ?? SEED_VISION).factor,
        resample: (o.vision ?? SEED_VISION).resample,
      });
      const original = { width: clip.probe.width, height: clip.probe.height };
      return clip.frames.map((f) => ({ image: f.image, timestamp: f.timestamp, t: f.t, preSized: true, original }));
    }
    case 'video_frames': {
      const frames = await Promise.all(
        p.frames.map(async (f) => ({ t: f.t, image: isRgb(f.image) ? f.image : await loadImage(f.image, o) })),
      );
      const clip = loadFrameList({ frames }, { factor: (o.vision ?? SEED_VISION).factor, resample: (o.vision ?? SEED_VISION).resample });
      return clip.frames.map((f) => {
        const src = frames[f.index]!.image;
        return { image: f.image, timestamp: f.timestamp, t: f.t, preSized: true, original: { width: src.width, height: src.height } };
      });
    }
  }
}

function isRgb(x: unknown): x is RgbImage {
  return typeof x === 'object' && x !== null && 'data' in x && 'width' in x && !(x instanceof Uint8Array);
}

/** Build token ids and vision inputs for a chat request. */
export async function buildModelInputs(req: ChatRequest, tokenizer: Tokenizer, o: BuildInputsOptions = {}): Promise<ModelInputs> {
  const thinking = validateRequest(req);
  const template = o.template ?? SEED_TEMPLATE;
  const cfg = o.vision ?? SEED_VISION;
  const ids = tokenizer.specialIds(template.specialTokens);
  const encode = (t: string) => tokenizer.encode(t);
  const segments = template.render(req.messages, { thinking, addGenerationPrompt: o.addGenerationPrompt ?? true });
  const out: number[] = [];
  const mask: number[] = [];
  const vision: VisionInput[] = [];
  for (const seg of segments) {
    if (seg.type === 'text') {
      for (const id of encode(seg.text)) (out.push(id), mask.push(0));
      continue;
    }
    if ((seg.part.type === 'video_url' || seg.part.type === 'video_frames') && !template.supportsVideo) {
      throw new ChatError('unsupported_part', `template ${template.name} does not support video parts (message ${seg.messageIndex})`);
    }
    if ((seg.part.type === 'video_url' || seg.part.type === 'video_frames') && template.video) {
      const { video, original } = await loadQwenVideoPart(seg.part, seg.messageIndex, template.video.style, cfg, o, o.video);
      const block = template.video.expand({ groups: video.grid.t, tokensPerGroup: video.tokensPerGroup, groupTimes: video.groupTimes }, ids, encode);
      vision.push({
        kind: 'video', pixelValues: video.pixelValues, shape: video.shape, grid: video.grid,
        tokenGrid: { rows: video.resized.height / cfg.factor, cols: video.resized.width / cfg.factor },
        tokens: video.tokens, original, resized: video.resized,
        tokenOffset: out.length + block.indexOf(ids.videoPad), messageIndex: seg.messageIndex,
        secondPerGrid: video.secondPerGrid, groupTimes: video.groupTimes,
      });
      for (const id of block) (out.push(id), mask.push(id === ids.videoPad ? 1 : 0));
      continue;
    }
    const frames = await loadMedia(seg, o);
    for (const f of frames) {
      let pre;
      try {
        pre = f.preSized ? framePatches(f.image, cfg, f.original) : preprocessRgb(f.image, cfg, o);
      } catch (e) {
        if (e instanceof MediaError) throw new MediaError(e.code, `message ${seg.messageIndex}: ${e.message}`);
        throw e;
      }
      const block = template.expandImage(pre.tokens, ids, encode, f.timestamp);
      const firstPad = block.indexOf(ids.imagePad);
      vision.push({
        kind: f.timestamp !== undefined ? 'video_frame' : 'image',
        pixelValues: pre.pixelValues,
        shape: pre.shape,
        grid: pre.grid,
        tokenGrid: pre.tokenGrid,
        tokens: pre.tokens,
        original: pre.original,
        resized: pre.resized,
        tokenOffset: out.length + firstPad,
        messageIndex: seg.messageIndex,
        ...(f.timestamp !== undefined ? { timestamp: f.timestamp, t: f.t! } : {}),
      });
      for (const id of block) (out.push(id), mask.push(id === ids.imagePad ? 1 : 0));
    }
  }
  return { inputIds: Int32Array.from(out), visionMask: Uint8Array.from(mask), vision, thinking };
}

/** Patchify a frame that the video sampler already resized. */
function framePatches(image: RgbImage, cfg: VisionPreprocessConfig, original?: { width: number; height: number }) {
  const p = patchifyFrames([image], cfg);
  const size = { width: image.width, height: image.height };
  return { ...p, original: original ?? size, resized: size, tokenGrid: { rows: image.height / cfg.factor, cols: image.width / cfg.factor } };
}
