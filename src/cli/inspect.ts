/**
 * `seedvl inspect <image-or-video>`: print what the model would see, and what a
 * video will cost, without running a model. Images are read from the header only;
 * videos are probed with ffprobe and sampled on paper (no frame is decoded).
 */
import { parseArgs } from 'node:util';
import { MediaError } from '../processing/errors.ts';
import { probeImage } from '../processing/image.ts';
import { planImage } from '../processing/preprocess.ts';
import { planVideo } from '../processing/video.ts';
import { VISION_PRESETS, type VisionPresetName } from '../processing/vision_config.ts';
import type { VideoTask } from '../processing/video_sampling.ts';

export const INSPECT_HELP = `Usage: seedvl inspect <image-or-video> [options]

Print what the model would see: the resized size, the token grid and the token
count of an image; for a video also the sampled frames with their timestamps and
the total cost in tokens (timestamp text not included).

Options:
  --min-pixels N   smallest pixel count after resizing (image, or per video frame)
  --max-pixels N   largest pixel count after resizing (image, or per video frame)
  --fps F          video sampling rate (default 1; see --task)
  --task T         video task: general (1 fps), fine_grained (2), counting (5), motion (5)
  --preset P       preprocessing preset: ${Object.keys(VISION_PRESETS).join(', ')} (default seed)
  --allow-network  allow http(s) URLs
  --json           print JSON
  -h, --help       show this help
`;

export interface InspectIO {
  out: (s: string) => void;
  err: (s: string) => void;
}

const defaultIO: InspectIO = { out: (s) => void process.stdout.write(s), err: (s) => void process.stderr.write(s) };

function positive(name: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!(n > 0) || !Number.isFinite(n)) throw new UsageError(`${name} must be a positive number, got ${JSON.stringify(v)}`);
  return n;
}

class UsageError extends Error {}

export async function inspectCommand(argv: string[], io: InspectIO = defaultIO): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        'min-pixels': { type: 'string' },
        'max-pixels': { type: 'string' },
        fps: { type: 'string' },
        task: { type: 'string' },
        preset: { type: 'string' },
        'allow-network': { type: 'boolean' },
        json: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (e) {
    io.err(`error: ${(e as Error).message}\n\n${INSPECT_HELP}`);
    return 2;
  }
  const { values, positionals } = parsed;
  if (values.help) {
    io.out(INSPECT_HELP);
    return 0;
  }
  try {
    if (positionals.length !== 1) throw new UsageError(`expected exactly one file, got ${positionals.length}`);
    const preset = (values.preset ?? 'seed') as VisionPresetName;
    const cfg = VISION_PRESETS[preset];
    if (!cfg) throw new UsageError(`unknown preset ${JSON.stringify(values.preset)}`);
    const task = values.task as VideoTask | undefined;
    if (task !== undefined && !['general', 'fine_grained', 'counting', 'motion'].includes(task)) throw new UsageError(`unknown task ${JSON.stringify(task)}`);
    const minPixels = positive('--min-pixels', values['min-pixels']);
    const maxPixels = positive('--max-pixels', values['max-pixels']);
    const fps = positive('--fps', values.fps);
    const fetch = { allowNetwork: values['allow-network'] ?? false };
    const source = positionals[0]!;
    const report = await inspectImage(source, cfg, minPixels, maxPixels, fetch).catch(async (e: unknown) => {
      // Not an image: try it as a video.
      if (e instanceof MediaError && (e.code === 'unsupported_format' || e.code === 'decode_failed')) {
        return inspectVideo(source, cfg.factor, { minPixels, maxPixels, fps, task, ...fetch }).catch((v: unknown) => {
          // Neither: say both, so a corrupt image is not reported as only a video problem.
          throw new MediaError(e.code, `not a readable image (${e.message}) nor video (${(v as Error).message})`, source);
        });
      }
      throw e;
    });
    io.out(values.json ? `${JSON.stringify(report, null, 2)}\n` : describe(report));
    return 0;
  } catch (e) {
    if (e instanceof UsageError) {
      io.err(`error: ${e.message}\n\n${INSPECT_HELP}`);
      return 2;
    }
    io.err(`error: ${(e as Error).message}\n`);
    return 1;
  }
}

type Report = Record<string, unknown> & { kind: 'image' | 'video' };

async function inspectImage(source: string, cfg: (typeof VISION_PRESETS)[VisionPresetName], minPixels: number | undefined, maxPixels: number | undefined, fetch: { allowNetwork: boolean }): Promise<Report> {
  const info = await probeImage(source, fetch);
  const plan = planImage(info.width, info.height, cfg, { ...(minPixels ? { minPixels } : {}), ...(maxPixels ? { maxPixels } : {}) });
  return {
    kind: 'image',
    format: info.format,
    original: plan.original,
    resized: { width: plan.resized.width, height: plan.resized.height },
    grid: plan.tokenGrid,
    tokens: plan.tokens,
  };
}

async function inspectVideo(source: string, factor: number, o: { minPixels?: number | undefined; maxPixels?: number | undefined; fps?: number | undefined; task?: VideoTask | undefined; allowNetwork: boolean }): Promise<Report> {
  const opts = Object.fromEntries(Object.entries({ ...o, factor }).filter(([, v]) => v !== undefined));
  const { probe, plan } = await planVideo(source, opts);
  const rows = plan.resized.height / factor;
  const cols = plan.resized.width / factor;
  return {
    kind: 'video',
    codec: probe.codec,
    original: { width: probe.width, height: probe.height },
    resized: { width: plan.resized.width, height: plan.resized.height },
    grid: { rows, cols },
    duration: probe.duration,
    native_fps: probe.nativeFps,
    total_frames: probe.totalFrames,
    requested_fps: plan.requestedFps,
    // Effective rate: sampled frames per second of video (the 16-frame minimum and
    // uniform dropping make it differ from the requested rate).
    sampled_fps: probe.duration > 0 ? plan.frames.length / probe.duration : plan.frames.length,
    level: plan.level,
    subsampled: plan.subsampled,
    frames: plan.frames.map((f) => ({ t: f.t, index: f.index, width: plan.resized.width, height: plan.resized.height, tokens: plan.tokensPerFrame })),
    tokens: plan.totalTokens,
  };
}

function describe(r: Report): string {
  const o = r['original'] as { width: number; height: number };
  const z = r['resized'] as { width: number; height: number };
  const g = r['grid'] as { rows: number; cols: number };
  const lines = [
    `kind:      ${r.kind}`,
    `original:  ${o.width}x${o.height}`,
    `resized:   ${z.width}x${z.height}${r.kind === 'video' ? ' (every frame)' : ''}`,
    `grid:      ${g.rows} rows x ${g.cols} cols`,
  ];
  if (r.kind === 'video') {
    const frames = r['frames'] as { t: number }[];
    lines.push(
      `duration:  ${(r['duration'] as number).toFixed(2)} s at ${(r['native_fps'] as number).toFixed(3)} fps (${r['total_frames']} frames)`,
      `sampling:  ${frames.length} frames, ${(r['sampled_fps'] as number).toFixed(3)} fps (asked ${r['requested_fps']}), level ${r['level']} tokens/frame${r['subsampled'] ? ', frames dropped uniformly to fit the budget' : ''}`,
      `timestamps: ${frames.slice(0, 8).map((f) => f.t.toFixed(1)).join(', ')}${frames.length > 8 ? ', …' : ''}`,
      `tokens:    ${r['tokens']} (${(r['frames'] as { tokens: number }[])[0]?.tokens ?? 0} per frame, timestamps excluded)`,
    );
  } else lines.push(`tokens:    ${r['tokens']}`);
  return `${lines.join('\n')}\n`;
}
