/**
 * `seedvl chat`: an interactive, multi-turn conversation in the terminal.
 * Lines starting with / are commands; `/image PATH` attaches an image to the
 * next message. Ctrl-C stops the current answer; Ctrl-C at the prompt (or
 * Ctrl-D) leaves.
 */
import { createInterface } from 'node:readline';
import type { ChatMessage, ContentPart } from '../processing/chat.ts';
import { MODEL_OPTIONS, SAMPLING_OPTIONS, MODEL_HELP, SAMPLING_HELP, UsageError, parse, samplingFrom, loadFromArgs } from './model_args.ts';

const HELP = `usage: seedvl chat (--model DIR | --preset NAME) [options]

Interactive chat. Commands inside the chat:
  /image PATH      attach an image to your next message (repeatable)
  /video PATH      attach a video to your next message
  /thinking on|off switch reasoning mode
  /system TEXT     set the system message
  /reset           forget the conversation
  /exit            leave (or Ctrl-D)

  --system TEXT    initial system message

${MODEL_HELP}

${SAMPLING_HELP}`;

export async function chatCommand(argv: string[]): Promise<number> {
  let a;
  let gen;
  try {
    a = parse(argv, { ...MODEL_OPTIONS, ...SAMPLING_OPTIONS, system: { type: 'string' } }, false);
    if (a.values.help) {
      console.log(HELP);
      return 0;
    }
    gen = samplingFrom(a.values);
  } catch (e) {
    console.error(`seedvl chat: ${(e as Error).message}\n\n${HELP}`);
    return 2;
  }
  let engine;
  try {
    ({ engine } = await loadFromArgs(a.values));
  } catch (e) {
    console.error(`seedvl chat: ${(e as Error).message}`);
    return e instanceof UsageError ? 2 : 1;
  }
  const rl = createInterface({ input: process.stdin, output: process.stdout, terminal: process.stdin.isTTY });
  let system = a.values.system;
  let thinking = gen.thinking;
  let history: ChatMessage[] = [];
  let pending: ContentPart[] = [];
  let current: AbortController | null = null;
  rl.on('SIGINT', () => {
    if (current) current.abort();
    else rl.close();
  });
  // The line iterator buffers input that arrives while an answer is generated (piped stdin).
  const lines = rl[Symbol.asyncIterator]();
  const ask = async (): Promise<string | null> => {
    rl.setPrompt(pending.length ? `you (+${pending.length} media)> ` : 'you> ');
    rl.prompt();
    const r = await lines.next();
    return r.done ? null : r.value;
  };
  console.error(`chatting with ${engine.name} (thinking ${thinking === 'enabled' ? 'on' : 'off'}); /exit to leave`);
  try {
    for (;;) {
      const line = await ask();
      if (line === null) break;
      const text = line.trim();
      if (!text) continue;
      if (text.startsWith('/')) {
        const [cmd, ...rest] = text.split(/\s+/);
        const arg = rest.join(' ');
        if (cmd === '/exit' || cmd === '/quit') break;
        else if (cmd === '/image' && arg) pending.push({ type: 'image_url', image_url: { url: arg } });
        else if (cmd === '/video' && arg) pending.push({ type: 'video_url', video_url: { url: arg } });
        else if (cmd === '/thinking' && (arg === 'on' || arg === 'off')) thinking = arg === 'on' ? 'enabled' : 'disabled';
        else if (cmd === '/system') system = arg || undefined;
        else if (cmd === '/reset') (history = []), (pending = []);
        else console.error('commands: /image PATH, /video PATH, /thinking on|off, /system TEXT, /reset, /exit');
        continue;
      }
      const user: ChatMessage = { role: 'user', content: pending.length ? [...pending, { type: 'text', text }] : text };
      const messages: ChatMessage[] = [...(system ? [{ role: 'system' as const, content: system }] : []), ...history, user];
      current = new AbortController();
      try {
        const h = await engine.chat({ messages, thinking: { type: thinking } }, {
          sampling: gen.sampling,
          ...(gen.maxTokens ? { maxTokens: gen.maxTokens } : {}),
          ...(gen.stop ? { stop: gen.stop } : {}),
          signal: current.signal,
          media: { allowNetwork: true },
        });
        let shownReasoning = false;
        process.stdout.write('model> ');
        for await (const e of h.events) {
          if (e.type !== 'delta') continue;
          if (e.reasoning) {
            if (!shownReasoning) process.stdout.write('\x1b[2m');
            shownReasoning = true;
            process.stdout.write(e.reasoning);
          }
          if (e.content) {
            if (shownReasoning) process.stdout.write('\x1b[0m\n       ');
            shownReasoning = false;
            process.stdout.write(e.content);
          }
        }
        if (shownReasoning) process.stdout.write('\x1b[0m');
        const r = await h.result;
        process.stdout.write(r.finishReason === 'cancelled' ? ' [stopped]\n' : '\n');
        history.push(user, { role: 'assistant', content: r.content });
        pending = [];
      } catch (e) {
        console.error(`error: ${(e as Error).message}`);
      } finally {
        current = null;
      }
    }
  } finally {
    rl.close();
    engine.dispose();
  }
  return 0;
}
