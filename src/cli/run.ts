/**
 * `seedvl run`: one question, one streamed answer.
 *
 *   seedvl run --preset tiny --image cat.jpg "Where is the cat?"
 *   seedvl run --model out/seed-small --temperature 0 --json "Describe" --image a.png
 */
import type { ChatMessage, ContentPart } from '../processing/chat.ts';
import { loadImage } from '../processing/image.ts';
import { annotationsFromText, renderAnnotationsPng } from '../processing/draw.ts';
import { MediaError, ChatError } from '../processing/errors.ts';
import { ModelInputError } from '../generation/model.ts';
import { MODEL_OPTIONS, SAMPLING_OPTIONS, MODEL_HELP, SAMPLING_HELP, UsageError, parse, samplingFrom, loadFromArgs } from './model_args.ts';

const HELP = `usage: seedvl run (--model DIR | --preset NAME) [options] PROMPT

Answers one prompt, streaming the answer to stdout (reasoning to stderr).

input:
  --image PATH           attach an image (repeatable; path, file:// or data: URL)
  --video PATH           attach a video (sampled per model family (Seed: [t second] per frame; Qwen: frame pairs); needs ffmpeg)
  --system TEXT          a system message
  --json                 print one JSON object (content, reasoning_content, finish_reason, usage) instead
  --draw OUT.png         draw the boxes/points of the answer on the first image

${MODEL_HELP}

${SAMPLING_HELP}

exit codes: 0 ok, 1 model or media error, 2 usage error`;

export async function runCommand(argv: string[]): Promise<number> {
  let a;
  try {
    a = parse(argv, {
      ...MODEL_OPTIONS, ...SAMPLING_OPTIONS,
      image: { type: 'string', multiple: true }, video: { type: 'string', multiple: true },
      system: { type: 'string' }, json: { type: 'boolean' }, draw: { type: 'string' },
    });
    if (a.values.help) {
      console.log(HELP);
      return 0;
    }
    if (a.positionals.length === 0) throw new UsageError('give a prompt');
  } catch (e) {
    console.error(`seedvl run: ${(e as Error).message}\n\n${HELP}`);
    return 2;
  }
  const v = a.values;
  let gen;
  try {
    gen = samplingFrom(v);
  } catch (e) {
    console.error(`seedvl run: ${(e as Error).message}`);
    return 2;
  }
  const parts: ContentPart[] = [
    ...(v.image ?? []).map((url): ContentPart => ({ type: 'image_url', image_url: { url } })),
    ...(v.video ?? []).map((url): ContentPart => ({ type: 'video_url', video_url: { url } })),
    { type: 'text', text: a.positionals.join(' ') },
  ];
  const messages: ChatMessage[] = [
    ...(v.system ? [{ role: 'system' as const, content: v.system }] : []),
    { role: 'user', content: parts.length === 1 ? a.positionals.join(' ') : parts },
  ];
  let engine, parseObjects;
  try {
    ({ engine, parseObjects } = await loadFromArgs(v, !!v.json));
  } catch (e) {
    console.error(`seedvl run: ${(e as Error).message}`);
    return e instanceof UsageError ? 2 : 1;
  }
  const ac = new AbortController();
  const onSigint = (): void => ac.abort();
  process.once('SIGINT', onSigint);
  try {
    const h = await engine.chat({ messages, thinking: { type: gen.thinking } }, {
      sampling: gen.sampling,
      ...(gen.maxTokens ? { maxTokens: gen.maxTokens } : {}),
      ...(gen.stop ? { stop: gen.stop } : {}),
      ...(gen.thinkingBudget !== undefined ? { thinkingBudget: gen.thinkingBudget } : {}),
      signal: ac.signal,
      media: { allowNetwork: true },
    });
    if (!v.json) {
      let inReasoning = false;
      for await (const e of h.events) {
        if (e.type !== 'delta') continue;
        if (e.reasoning) {
          if (!inReasoning) process.stderr.write('\x1b[2m[reasoning] ');
          inReasoning = true;
          process.stderr.write(e.reasoning);
        }
        if (e.content) {
          if (inReasoning) process.stderr.write('\x1b[0m\n');
          inReasoning = false;
          process.stdout.write(e.content);
        }
      }
      if (inReasoning) process.stderr.write('\x1b[0m\n');
      process.stdout.write('\n');
    }
    const r = await h.result;
    if (v.json) {
      console.log(JSON.stringify({
        model: engine.name, content: r.content, reasoning_content: r.reasoning_content, finish_reason: r.finishReason,
        usage: { prompt_tokens: r.usage.promptTokens, completion_tokens: r.usage.completionTokens, reasoning_tokens: r.usage.reasoningTokens },
        seed: r.seed, ttft_ms: Math.round(r.timings.ttftMs), total_ms: Math.round(r.timings.totalMs),
        // Boxes/points in original-image pixels of the first image, next to the model's raw values.
        objects: parseObjects(r.content, h.inputs.vision[0] ? { original: h.inputs.vision[0].original, resized: h.inputs.vision[0].resized } : undefined),
      }));
    } else {
      const tps = r.usage.completionTokens / Math.max(1e-3, (r.timings.totalMs - r.timings.ttftMs) / 1000);
      process.stderr.write(`\x1b[2m[${r.finishReason}; ${r.usage.promptTokens} prompt + ${r.usage.completionTokens} answer tokens; first token ${r.timings.ttftMs.toFixed(0)} ms; ${tps.toFixed(1)} tok/s]\x1b[0m\n`);
    }
    if (v.draw && v.image?.length) {
      const img = await loadImage(v.image[0]!);
      const items = annotationsFromText(r.content, { width: img.width, height: img.height });
      await renderAnnotationsPng(img, items, v.draw);
      process.stderr.write(`drew ${items.length} annotation(s) on ${v.draw}\n`);
    }
    return 0;
  } catch (e) {
    const known = e instanceof MediaError || e instanceof ChatError || e instanceof ModelInputError || e instanceof RangeError;
    console.error(`seedvl run: ${known ? '' : 'error: '}${(e as Error).message}`);
    return 1;
  } finally {
    process.off('SIGINT', onSigint);
    engine.dispose();
  }
}
