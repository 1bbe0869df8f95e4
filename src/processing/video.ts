/**
 * Video probing and decoding with the system ffprobe/ffmpeg. Only the sampled
 * frames are handed over: ffmpeg's `select` filter drops every other frame inside
 * ffmpeg, and frames stream through a pipe one at a time, so a long video is never
 * held in memory. Frames are resized in TypeScript with the same resampler as
 * images (bilinear for Seed, spec §4.3 "same as images").
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { MediaError, describeInput } from './errors.ts';
import { ffmpegBinary, ffprobeBinary, missingOr, runCapture } from './ffmpeg.ts';
import { resizeRgb, type ResampleFilter, type RgbImage } from './resample.ts';
import { localPath, readMediaBytes, type FetchOptions, type MediaSource } from './source.ts';
import { planFrameList, planVideoSampling, type PlannedFrame, type VideoPlan, type VideoSamplingOptions } from './video_sampling.ts';

export interface VideoProbe {
  /** Display size (after the rotation in the container's display matrix). */
  width: number;
  height: number;
  /** Seconds. */
  duration: number;
  /** Average frame rate reported by the demuxer. */
  nativeFps: number;
  totalFrames: number;
  codec: string;
  /** Rotation in degrees from the display matrix (0 when none). */
  rotation: number;
}

interface ProbeStream {
  codec_type?: string;
  codec_name?: string;
  width?: number;
  height?: number;
  avg_frame_rate?: string;
  r_frame_rate?: string;
  nb_frames?: string;
  nb_read_packets?: string;
  duration?: string;
  disposition?: { attached_pic?: number };
  tags?: Record<string, string>;
  side_data_list?: { rotation?: number }[];
}

function parseRate(r: string | undefined): number {
  if (!r) return NaN;
  const [a, b] = r.split('/').map(Number);
  return b ? a! / b : Number(a);
}

/** Read the first video stream's size, rate, frame count and duration. */
export async function probeVideo(path: string, label = path): Promise<VideoProbe> {
  const args = ['-v', 'error', '-print_format', 'json', '-show_streams', '-show_format', path];
  const res = await runCapture(ffprobeBinary(), args, label);
  if (res.code !== 0) {
    const msg = res.stderr.trim().split('\n').pop() ?? '';
    if (/No such file/i.test(msg)) throw new MediaError('not_found', 'cannot read file', label);
    throw new MediaError('decode_failed', `ffprobe could not read the file: ${msg}`, label);
  }
  let json: { streams?: ProbeStream[]; format?: { duration?: string; format_name?: string } };
  try {
    json = JSON.parse(res.stdout);
  } catch {
    throw new MediaError('decode_failed', 'ffprobe returned unreadable output', label);
  }
  const stream = (json.streams ?? []).find((s) => s.codec_type === 'video' && !s.disposition?.attached_pic);
  if (!stream) throw new MediaError('no_video_stream', 'the file has no video stream', label);
  if (!stream.width || !stream.height) throw new MediaError('decode_failed', 'video stream has no frame size', label);
  let fps = parseRate(stream.avg_frame_rate);
  if (!(fps > 0)) fps = parseRate(stream.r_frame_rate);
  const duration = Number(stream.duration ?? json.format?.duration ?? NaN);
  let total = Number(stream.nb_frames ?? NaN);
  if (!(total > 0)) total = await countFrames(path, label);
  if (!(fps > 0)) fps = duration > 0 ? total / duration : NaN;
  if (!(total > 0) || !(fps > 0)) throw new MediaError('decode_failed', 'cannot determine the frame count or frame rate', label);
  const rot = stream.side_data_list?.find((d) => typeof d.rotation === 'number')?.rotation ?? Number(stream.tags?.['rotate'] ?? 0);
  const rotation = ((Math.round(rot) % 360) + 360) % 360;
  const swap = rotation === 90 || rotation === 270;
  return {
    width: swap ? stream.height : stream.width,
    height: swap ? stream.width : stream.height,
    duration: duration > 0 ? duration : total / fps,
    nativeFps: fps,
    totalFrames: total,
    codec: stream.codec_name ?? 'unknown',
    rotation,
  };
}

/** Containers such as Matroska do not store a frame count: count packets (no decoding). */
async function countFrames(path: string, label: string): Promise<number> {
  const res = await runCapture(ffprobeBinary(), ['-v', 'error', '-select_streams', 'v:0', '-count_packets', '-show_entries', 'stream=nb_read_packets', '-print_format', 'json', path], label);
  if (res.code !== 0) return NaN;
  try {
    return Number((JSON.parse(res.stdout) as { streams?: ProbeStream[] }).streams?.[0]?.nb_read_packets ?? NaN);
  } catch {
    return NaN;
  }
}

export interface DecodedFrame extends PlannedFrame {
  /** The frame resized to the plan's size. */
  image: RgbImage;
}

/**
 * Decode the frames with the given (sorted, unique) indices at native size and
 * resize each to `size`. Frames arrive in index order, one at a time.
 */
export async function* decodeFrames(path: string, probe: VideoProbe, frames: readonly PlannedFrame[], size: { width: number; height: number }, filter: ResampleFilter, label = path): AsyncGenerator<DecodedFrame> {
  if (frames.length === 0) return;
  const expr = selectExpression(frames.map((f) => f.index));
  const args = ['-v', 'error', '-nostdin', '-i', path, '-map', '0:v:0', '-vf', `select='${expr}'`, '-fps_mode', 'passthrough', '-f', 'rawvideo', '-pix_fmt', 'rgb24', 'pipe:1'];
  const child = spawn(ffmpegBinary(), args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const spawnError = new Promise<never>((_, reject) => child.on('error', (e) => reject(missingOr(e, ffmpegBinary(), label))));
  spawnError.catch(() => undefined);
  const stderr: Buffer[] = [];
  child.stderr.on('data', (d: Buffer) => stderr.push(d));
  const frameBytes = probe.width * probe.height * 3;
  let pending: Buffer = Buffer.alloc(0);
  let k = 0;
  try {
    for await (const chunk of child.stdout as AsyncIterable<Buffer>) {
      pending = pending.length ? Buffer.concat([pending, chunk]) : chunk;
      while (pending.length >= frameBytes && k < frames.length) {
        const raw = new Uint8Array(pending.subarray(0, frameBytes));
        pending = pending.subarray(frameBytes);
        const image = resizeRgb({ width: probe.width, height: probe.height, data: raw }, size.width, size.height, filter);
        yield { ...frames[k]!, image };
        k++;
      }
    }
    const code = await Promise.race([new Promise<number>((ok) => (child.exitCode !== null ? ok(child.exitCode) : child.on('close', (c) => ok(c ?? -1)))), spawnError]);
    if (code !== 0) {
      throw new MediaError('decode_failed', `ffmpeg failed: ${Buffer.concat(stderr).toString('utf8').trim().split('\n').pop() ?? ''}`, label);
    }
    if (k === 0) throw new MediaError('decode_failed', 'ffmpeg produced no frames', label);
  } finally {
    if (child.exitCode === null) child.kill('SIGKILL');
  }
}

/**
 * An ffmpeg `select` expression true exactly on the given frame numbers. Runs of
 * consecutive frames become one `between()`, and the terms are summed as a balanced
 * tree: ffmpeg's expression parser rejects long flat chains (it fails somewhere
 * between 100 and 200 terms), while a tree of 640 terms is only 10 levels deep.
 */
export function selectExpression(indices: readonly number[]): string {
  const terms: string[] = [];
  for (let i = 0; i < indices.length; ) {
    let j = i;
    while (j + 1 < indices.length && indices[j + 1] === indices[j]! + 1) j++;
    terms.push(i === j ? `eq(n\\,${indices[i]})` : `between(n\\,${indices[i]}\\,${indices[j]})`);
    i = j + 1;
  }
  const tree = (a: number, b: number): string => (b - a === 1 ? terms[a]! : `(${tree(a, (a + b) >> 1)}+${tree((a + b) >> 1, b)})`);
  return tree(0, terms.length);
}

export interface VideoLoadOptions extends VideoSamplingOptions, FetchOptions {
  /** Resampling filter for frames (Seed: bilinear). */
  resample?: ResampleFilter;
}

export interface VideoClip {
  probe: VideoProbe;
  plan: VideoPlan;
  frames: DecodedFrame[];
}

/**
 * Run `fn` with a local file path for the source: paths are used in place, bytes,
 * data: URLs and (when allowed) http(s) URLs are written to a private temp file.
 */
export async function withLocalFile<T>(source: MediaSource, opts: FetchOptions, fn: (path: string, label: string) => Promise<T>): Promise<T> {
  const path = localPath(source);
  const label = describeInput(source instanceof URL ? source.href : source);
  if (path !== undefined) return fn(path, label);
  const { bytes } = await readMediaBytes(source, { maxBytes: 1024 * 1024 * 1024, ...opts });
  const dir = await mkdtemp(join(tmpdir(), 'seedvl-video-'));
  try {
    const file = join(dir, 'input');
    await writeFile(file, bytes);
    return await fn(file, label);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Probe and plan without decoding any frame: what a video will cost. */
export async function planVideo(source: MediaSource, opts: VideoLoadOptions = {}): Promise<{ probe: VideoProbe; plan: VideoPlan }> {
  return withLocalFile(source, opts, async (path, label) => {
    const probe = await probeVideo(path, label);
    return { probe, plan: planVideoSampling(probe.totalFrames, probe.nativeFps, probe.width, probe.height, opts) };
  });
}

/** Probe, plan and decode the sampled frames of a video. */
export async function loadVideo(source: MediaSource, opts: VideoLoadOptions = {}): Promise<VideoClip> {
  return withLocalFile(source, opts, async (path, label) => {
    const probe = await probeVideo(path, label);
    const plan = planVideoSampling(probe.totalFrames, probe.nativeFps, probe.width, probe.height, opts);
    const frames: DecodedFrame[] = [];
    for await (const f of decodeFrames(path, probe, plan.frames, plan.resized, opts.resample ?? 'bilinear', label)) frames.push(f);
    // A container can over-report its frame count; keep the plan consistent with what decoded.
    if (frames.length < plan.frames.length) {
      plan.frames = plan.frames.slice(0, frames.length);
      plan.totalTokens = plan.tokensPerFrame * frames.length;
    }
    return { probe, plan, frames };
  });
}

/** A caller-supplied list of frames with timestamps in seconds. */
export interface FrameListInput {
  frames: { image: RgbImage; t: number }[];
}

/** Apply the same level choice and resizing to a list of frames. */
export function loadFrameList(input: FrameListInput, opts: Omit<VideoLoadOptions, 'fps' | 'task' | 'minFrames'> = {}): VideoClip {
  if (input.frames.length === 0) throw new MediaError('invalid_input', 'frame list is empty');
  const first = input.frames[0]!.image;
  const plan = planFrameList(input.frames.map((f) => f.t), first.width, first.height, opts);
  const frames = plan.frames.map((p) => ({ ...p, image: resizeRgb(input.frames[p.index]!.image, plan.resized.width, plan.resized.height, opts.resample ?? 'bilinear') }));
  const duration = input.frames[input.frames.length - 1]!.t - input.frames[0]!.t;
  const probe: VideoProbe = { width: first.width, height: first.height, duration, nativeFps: plan.requestedFps, totalFrames: input.frames.length, codec: 'frames', rotation: 0 };
  return { probe, plan, frames };
}
