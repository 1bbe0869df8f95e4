/**
 * Qwen video parts end to end: `seedvl run --model <qwen dir> --video clip.mp4` on a
 * golden model directory with Qwen's real tokenizer, on an ffmpeg lavfi clip
 * (8 frames at 4 fps, 112×84). The prompt holds the text tokens plus exactly the
 * video tokens each family's layout implies.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { loadModelDir } from '../../../src/models/registry.ts';
import { Engine } from '../../../src/generation/engine.ts';
import { runCommand } from '../../../src/cli/run.ts';
import { loadQwenModel } from '../../../src/models/qwen_vl/load.ts';
import { videoBatch } from '../../../src/models/qwen_vl/runtime.ts';
import { argmax, tidy } from '../../../src/tensor/index.ts';
import { copyModel, goldenAvailable, tempDir, QWEN_TOKENIZER } from './_helpers.ts';

let ffmpeg = true;
try {
  execFileSync('ffmpeg', ['-version'], { stdio: 'ignore' });
} catch {
  ffmpeg = false;
}
const skip = !goldenAvailable || !existsSync(QWEN_TOKENIZER) ? 'shared/golden or the Qwen tokenizer is not present' : !ffmpeg ? 'ffmpeg is not installed' : false;

function clip(): string {
  const out = join(tempDir('video'), 'clip.mp4');
  execFileSync('ffmpeg', ['-v', 'error', '-y', '-f', 'lavfi', '-i', 'testsrc=duration=2:size=112x84:rate=4', '-pix_fmt', 'yuv420p', out]);
  return out;
}

const PROMPT = 'What happens?';
const VIDEO_PAD = 151656;

test('Engine: Qwen2-VL, Qwen2.5-VL and Qwen3-VL-MoE take a video part; prompt = text + video tokens; M-RoPE metadata reaches the model', { skip }, async () => {
  const path = clip();
  for (const family of ['qwen2_vl', 'qwen2_5_vl', 'qwen3_vl_moe'] as const) {
    const dir = copyModel(family, { tokenizer: true });
    const l = await loadModelDir(dir, { maxBatch: 1, maxContext: 600 });
    const engine = new Engine(l.model, l.tokenizer, { template: l.template, vision: l.vision, maxBatch: 1 });
    try {
      const user = (withVideo: boolean) => ({ messages: [{ role: 'user' as const, content: [
        ...(withVideo ? [{ type: 'video_url' as const, video_url: { url: path } }] : []), { type: 'text' as const, text: PROMPT }] }] });
      const h = await engine.chat(user(true), { sampling: { temperature: 0 }, maxTokens: 3 });
      const r = await h.result;
      const textOnly = (await engine.chat(user(false), { sampling: { temperature: 0 }, maxTokens: 1 })).inputs.inputIds.length;
      const v = h.inputs.vision[0]!;
      assert.equal(h.inputs.vision.length, 1);
      assert.equal(v.kind, 'video');
      let videoTokens: number;
      if (family !== 'qwen3_vl_moe') {
        // 4 frames (fps 2) of 84×112 upscaled to 280×392 (≥ 128 tokens per frame): grid [2, 20, 28].
        assert.deepEqual(v.grid, { t: 2, h: 20, w: 28 });
        assert.equal(v.secondPerGrid, 1); // 2 frames per patch / 2 fps sampled
        videoTokens = 2 + (2 * 20 * 28) / 4;
      } else {
        // Frames 0, 2, 5, 7 at 160×224 (Qwen3 smart_resize): grid [2, 10, 14], patches at 0.25 s and 1.5 s.
        assert.deepEqual(v.grid, { t: 2, h: 10, w: 14 });
        assert.deepEqual(v.groupTimes, [0.25, 1.5]);
        const ts = ['<0.2 seconds>', '<1.5 seconds>'].map((s) => l.tokenizer.encode(s).length);
        videoTokens = 2 + ts[0]! + ts[1]! + 2 * (2 + 35);
        const text = l.tokenizer.decode(Array.from(h.inputs.inputIds));
        assert.ok(text.includes('<|vision_start|><0.2 seconds><|vision_start|><|video_pad|>'), text.slice(0, 120));
      }
      assert.equal(h.inputs.inputIds.length, textOnly + videoTokens);
      assert.equal(r.usage.promptTokens, textOnly + videoTokens);
      assert.equal(h.inputs.inputIds.filter((x) => x === VIDEO_PAD).length, v.tokens);
      assert.equal(r.usage.completionTokens, 3);

      // The same prompt driven through the model directly gives the same first token.
      const { model } = loadQwenModel(dir);
      const cache = model.createCache(1, h.inputs.inputIds.length + 1);
      const videos = videoBatch(h.inputs.vision)!;
      const logits = model.prefill(cache, { inputIds: h.inputs.inputIds, videos });
      if (family !== 'qwen3_vl_moe') {
        // Temporal M-RoPE ids of the second temporal patch: +trunc(tokens_per_second · 1 s) for Qwen2.5, +1 for Qwen2.
        const ids = h.inputs.inputIds;
        const { positions } = model.positions(ids, [ids.length], { videos });
        const i0 = v.tokenOffset;
        const step = family === 'qwen2_5_vl' ? Math.trunc(model.config.vision.tokensPerSecond * 1) : 1;
        assert.ok(step > 0);
        assert.equal(positions[i0 + v.tokens / 2]! - positions[i0]!, step);
      }
      const first = tidy(() => (argmax(logits, -1).toArray() as number[])[0]);
      assert.equal(first, r.tokenIds[0]);
      logits.dispose();
      videos.pixelValues.dispose();
      cache.dispose();
      model.dispose();
    } finally {
      engine.dispose();
    }
  }
});

test('seedvl run --model <qwen dir> --video PATH answers (JSON output)', { skip }, async () => {
  const path = clip();
  const dir = copyModel('qwen3_vl_moe', { tokenizer: true });
  const lines: string[] = [];
  const log = console.log;
  console.log = (...a: unknown[]) => void lines.push(a.join(' '));
  let code: number;
  try {
    code = await runCommand(['--model', dir, '--video', path, '--temperature', '0', '--max-tokens', '3', '--max-context', '600', '--json', PROMPT]);
  } finally {
    console.log = log;
  }
  assert.equal(code, 0, lines.join('\n'));
  const out = JSON.parse(lines[lines.length - 1]!);
  assert.equal(out.usage.completion_tokens, 3);
  assert.equal(typeof out.content, 'string');
  assert.ok(out.usage.prompt_tokens > 70, String(out.usage.prompt_tokens));
});
