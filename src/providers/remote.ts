/**
 * A remote OpenAI-compatible endpoint (another seedvl server, or the hosted
 * Seed1.5-VL): base URL + API key. Media are sent the way the Seed1.5-VL
 * cookbook client sends them: images as base64 data URLs with detail "high";
 * a video as its sampled frames, each a text part "[t second]" followed by the
 * frame as a JPEG data URL (spec §4.3, §7). The `thinking` switch is sent as
 * is and `reasoning_content` is read back, streamed or not.
 */
import sharp from 'sharp';
import { readMediaBytes, sourceKind, type MediaSource } from '../processing/source.ts';
import { loadVideo, loadFrameList } from '../processing/video.ts';
import { loadImage } from '../processing/image.ts';
import type { RgbImage } from '../processing/resample.ts';
import type { ContentPart, ChatMessage } from '../processing/chat.ts';
import { SEED_VISION } from '../processing/vision_config.ts';
import {
  ProviderError, type CallOptions, type ChatCompletion, type ChatCompletionChunk, type ChatCompletionRequest, type ModelCard, type Provider,
} from './types.ts';

export interface RemoteProviderOptions {
  /** e.g. http://127.0.0.1:8080/v1 or https://ark.cn-beijing.volces.com/api/v3 */
  baseURL: string;
  apiKey?: string;
  /** Model id sent when a request names none. */
  model?: string;
  /** Per-request time limit (default 10 minutes). */
  timeoutMs?: number;
  /** JPEG quality of frames and decoded images sent as data URLs (default 90). */
  jpegQuality?: number;
  /** Allow reading local files named in image/video parts (default true: this runs on the caller's machine). */
  allowLocalFiles?: boolean;
  /** Allow fetching http(s) video URLs to sample them locally (default false). */
  allowNetwork?: boolean;
}

type WirePart = { type: 'text'; text: string } | { type: 'image_url'; image_url: { url: string; detail?: string } };

async function jpegDataUrl(img: RgbImage, quality: number): Promise<string> {
  const buf = await sharp(Buffer.from(img.data.buffer, img.data.byteOffset, img.data.byteLength), {
    raw: { width: img.width, height: img.height, channels: 3 },
  }).jpeg({ quality }).toBuffer();
  return `data:image/jpeg;base64,${buf.toString('base64')}`;
}

function mimeOf(bytes: Uint8Array, hint?: string): string {
  if (hint?.startsWith('image/')) return hint;
  if (bytes[0] === 0x89 && bytes[1] === 0x50) return 'image/png';
  if (bytes[0] === 0xff && bytes[1] === 0xd8) return 'image/jpeg';
  if (bytes[0] === 0x47 && bytes[1] === 0x49) return 'image/gif';
  if (bytes[8] === 0x57 && bytes[9] === 0x45) return 'image/webp';
  return 'application/octet-stream';
}

export class RemoteProvider implements Provider {
  readonly name = 'remote';
  private readonly base: string;

  constructor(private readonly o: RemoteProviderOptions) {
    this.base = o.baseURL.replace(/\/+$/, '');
  }

  private headers(): Record<string, string> {
    return { 'content-type': 'application/json', ...(this.o.apiKey ? { authorization: `Bearer ${this.o.apiKey}` } : {}) };
  }

  /** Image part → data URL (http(s) URLs are passed on for the server to fetch). */
  private async imagePart(source: MediaSource | RgbImage, detail?: string): Promise<WirePart> {
    const d = detail ?? 'high';
    if (typeof source === 'object' && source !== null && 'width' in source && 'data' in source) {
      return { type: 'image_url', image_url: { url: await jpegDataUrl(source as RgbImage, this.o.jpegQuality ?? 90), detail: d } };
    }
    const s = source as MediaSource;
    const kind = sourceKind(s);
    if (kind === 'data_url' || kind === 'http_url') return { type: 'image_url', image_url: { url: String(s), detail: d } };
    if (kind === 'file' && this.o.allowLocalFiles === false) throw new ProviderError('local files are not allowed for this provider', 400, 'invalid_request', 'messages');
    const { bytes, mimeType } = await readMediaBytes(s);
    return { type: 'image_url', image_url: { url: `data:${mimeOf(bytes, mimeType)};base64,${Buffer.from(bytes).toString('base64')}`, detail: d } };
  }

  /** Video → "[t second]" + frame pairs, sampled with the cookbook algorithm. */
  private async videoParts(part: Extract<ContentPart, { type: 'video_url' | 'video_frames' }>): Promise<WirePart[]> {
    const q = this.o.jpegQuality ?? 90;
    let clip;
    if (part.type === 'video_url') {
      const v = typeof part.video_url === 'string' ? { url: part.video_url } : part.video_url;
      clip = await loadVideo(v.url, {
        allowNetwork: this.o.allowNetwork ?? false,
        factor: SEED_VISION.factor,
        resample: 'bicubic', // the cookbook resizes frames with bicubic before encoding
        ...(v.fps !== undefined ? { fps: v.fps } : {}),
        ...(v.task !== undefined ? { task: v.task } : {}),
      });
    } else {
      const frames = await Promise.all(part.frames.map(async (f) => ({ t: f.t, image: 'width' in (f.image as object) ? (f.image as RgbImage) : await loadImage(f.image as MediaSource) })));
      clip = loadFrameList({ frames }, { factor: SEED_VISION.factor, resample: 'bicubic' });
    }
    const out: WirePart[] = [];
    for (const f of clip.frames) {
      out.push({ type: 'text', text: f.timestamp });
      out.push({ type: 'image_url', image_url: { url: await jpegDataUrl(f.image, q), detail: 'high' } });
    }
    return out;
  }

  /** Messages in the wire format (only text and image_url parts). */
  async wireMessages(messages: ChatMessage[]): Promise<unknown[]> {
    return Promise.all(messages.map(async (m) => {
      if (typeof m.content === 'string') return { role: m.role, content: m.content };
      const parts: WirePart[] = [];
      for (const p of m.content) {
        if (p.type === 'text') parts.push(p);
        else if (p.type === 'image_url') {
          const iu = typeof p.image_url === 'string' ? { url: p.image_url } : p.image_url;
          parts.push(await this.imagePart(iu.url, iu.detail));
        } else if (p.type === 'image') parts.push(await this.imagePart(p.image));
        else parts.push(...(await this.videoParts(p)));
      }
      return { role: m.role, content: parts };
    }));
  }

  private async post(req: ChatCompletionRequest, stream: boolean, signal?: AbortSignal): Promise<Response> {
    const { messages, ...rest } = req;
    const body = {
      ...rest,
      model: req.model ?? this.o.model,
      messages: await this.wireMessages(messages),
      stream,
      ...(stream ? { stream_options: { include_usage: true } } : {}),
    };
    const timeout = AbortSignal.timeout(this.o.timeoutMs ?? 600_000);
    const res = await fetch(`${this.base}/chat/completions`, {
      method: 'POST',
      headers: this.headers(),
      body: JSON.stringify(body),
      signal: signal ? AbortSignal.any([signal, timeout]) : timeout,
    }).catch((e: unknown) => {
      throw new ProviderError(`cannot reach ${this.base}: ${(e as Error).message}`, 502, 'unreachable');
    });
    if (!res.ok) throw await errorOf(res);
    return res;
  }

  async listModels(o: CallOptions = {}): Promise<ModelCard[]> {
    const res = await fetch(`${this.base}/models`, { headers: this.headers(), ...(o.signal ? { signal: o.signal } : {}) });
    if (!res.ok) throw await errorOf(res);
    return ((await res.json()) as { data: ModelCard[] }).data;
  }

  async complete(req: ChatCompletionRequest, o: CallOptions = {}): Promise<ChatCompletion> {
    const res = await this.post(req, false, o.signal);
    return (await res.json()) as ChatCompletion;
  }

  async *stream(req: ChatCompletionRequest, o: CallOptions = {}): AsyncIterable<ChatCompletionChunk> {
    const res = await this.post(req, true, o.signal);
    yield* parseSse(res);
  }
}

async function errorOf(res: Response): Promise<ProviderError> {
  const text = await res.text().catch(() => '');
  let msg = text.slice(0, 500);
  try {
    const j = JSON.parse(text) as { error?: { message?: string } | string };
    msg = typeof j.error === 'string' ? j.error : (j.error?.message ?? msg);
  } catch {
    /* not JSON: keep the text */
  }
  return new ProviderError(`remote endpoint answered ${res.status}: ${msg}`, res.status, 'remote_error');
}

/** Server-sent events: `data: {json}` lines until `data: [DONE]`. */
export async function* parseSse(res: Response): AsyncIterable<ChatCompletionChunk> {
  if (!res.body) return;
  const decoder = new TextDecoder();
  let buf = '';
  for await (const bytes of res.body as unknown as AsyncIterable<Uint8Array>) {
    buf += decoder.decode(bytes, { stream: true });
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl).replace(/\r$/, '');
      buf = buf.slice(nl + 1);
      if (!line.startsWith('data:')) continue;
      const data = line.slice(5).trim();
      if (data === '[DONE]') return;
      const obj = JSON.parse(data) as ChatCompletionChunk & { error?: { message?: string } };
      if (obj.error) throw new ProviderError(`remote stream error: ${obj.error.message ?? 'unknown'}`, 502, 'remote_error');
      yield obj;
    }
  }
}
