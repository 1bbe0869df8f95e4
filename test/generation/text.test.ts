import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Tokenizer, buildTokenizerJson } from '../../src/processing/index.ts';
import { IncrementalDetokenizer } from '../../src/generation/detokenizer.ts';
import { StopStringMatcher, normalizeStop } from '../../src/generation/stop.ts';
import { ThinkingSplitter, splitThinkingText } from '../../src/generation/thinking.ts';
import { splitThinking } from '../../src/processing/parse.ts';

const tok = new Tokenizer(buildTokenizerJson({ corpus: ['hello world, the cat sat on the mat', 'héllo wörld 日本語'], vocabSize: 300 }));

test('incremental detokenizer: pieces concatenate to the full decode, never a broken character', () => {
  const texts = ['hello 👋🏽 world', '日本語のテキスト', 'naïve café — “quotes” ✓', '<think>x</think> y', 'a\u0301 e\u0301'];
  for (const t of texts) {
    const ids = tok.encode(t);
    const d = new IncrementalDetokenizer(tok);
    const pieces = ids.map((id) => d.push(id));
    pieces.push(d.flush());
    assert.equal(pieces.join(''), tok.decode(ids), `text ${JSON.stringify(t)}`);
    for (const p of pieces) assert.ok(!p.includes('\uFFFD'), `piece ${JSON.stringify(p)} of ${JSON.stringify(t)} holds a replacement char`);
    // A 4-byte emoji is one byte token per byte here: the first three pieces must be held back.
    if (t.startsWith('hello 👋')) assert.ok(pieces.some((p) => p.includes('👋')));
  }
});

test('incremental detokenizer: an unfinished character is flushed as U+FFFD at the end', () => {
  const ids = tok.encode('ok 👋').slice(0, -1); // drop the last byte of the emoji
  const d = new IncrementalDetokenizer(tok);
  const out = ids.map((id) => d.push(id)).join('');
  assert.equal(out, 'ok ');
  assert.ok(d.flush().includes('\uFFFD'));
});

function feed(stops: string[], chunks: string[]): { out: string; stopped: boolean } {
  const m = new StopStringMatcher(stops);
  let out = '';
  for (const c of chunks) {
    const r = m.push(c);
    out += r.text;
    if (r.stopped) return { out, stopped: true };
  }
  return { out: out + m.flush(), stopped: false };
}

test('stop strings: found across chunk boundaries, never partly emitted', () => {
  assert.deepEqual(feed(['END'], ['abc E', 'N', 'D more']), { out: 'abc ', stopped: true });
  assert.deepEqual(feed(['END'], ['abc EN', 'X']), { out: 'abc ENX', stopped: false });
  assert.deepEqual(feed(['\n\n', 'STOP'], ['a\n', 'b', '\n', '\nc']), { out: 'a\nb', stopped: true });
  assert.deepEqual(feed(['ab', 'b'], ['xab']), { out: 'x', stopped: true }); // earliest match wins
  assert.deepEqual(feed([], ['free']), { out: 'free', stopped: false });
  // What is held back is exactly a prefix of a stop string.
  const m = new StopStringMatcher(['<|im_end|>']);
  assert.equal(m.push('answer <|im').text, 'answer ');
  assert.equal(m.flush(), '<|im');
  assert.throws(() => normalizeStop(['']), /stop\[0\]/);
  assert.deepEqual(normalizeStop('x'), ['x']);
});

test('thinking splitter: streamed deltas equal the one-shot split for every chunking', () => {
  const texts = [
    '<think>\nLet me see. 2+2.\n</think>\n\nThe answer is 4.',
    'no reasoning here  ',
    '<think>a</think>b<think>c</think>d',
    '<think>never closed',
    ' <thi nk> literal',
    '<think></think>only answer',
  ];
  for (const t of texts) {
    const whole = splitThinkingText(t);
    for (let cut = 1; cut <= 4; cut++) {
      const s = new ThinkingSplitter();
      let r = '';
      let c = '';
      for (let i = 0; i < t.length; i += cut) {
        const d = s.push(t.slice(i, i + cut));
        r += d.reasoning;
        c += d.content;
      }
      const e = s.finish();
      assert.deepEqual({ reasoning_content: r + e.reasoning, content: c + e.content }, whole, `${JSON.stringify(t)} in chunks of ${cut}`);
    }
  }
  // Agrees with the processing layer's parser on well-formed outputs.
  for (const t of [texts[0]!, texts[1]!, texts[5]!]) {
    const p = splitThinking(t);
    assert.deepEqual(splitThinkingText(t), { reasoning_content: p.reasoning_content, content: p.content });
  }
  assert.deepEqual(splitThinkingText('pre-filled thought</think>answer', true), { reasoning_content: 'pre-filled thought', content: 'answer' });
});
