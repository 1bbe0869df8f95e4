/** The playground's static files (src/server/playground/), read once at startup. */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface Asset {
  type: string;
  body: string;
}

export function playgroundAssets(): Record<string, Asset> {
  const dir = join(dirname(fileURLToPath(import.meta.url)), 'playground');
  const read = (f: string): string => readFileSync(join(dir, f), 'utf8');
  return {
    '/': { type: 'text/html; charset=utf-8', body: read('index.html') },
    '/playground.js': { type: 'text/javascript; charset=utf-8', body: read('playground.js') },
  };
}
