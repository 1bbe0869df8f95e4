/**
 * The playground end to end in Debian's chromium (playwright-core): attach an
 * image, ask, watch the streamed answer, see the parsed box drawn on the image.
 * Skipped when /usr/bin/chromium is missing (`apt-get install -y chromium`).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { chromium } from 'playwright-core';
import { startTestServer } from './_server.ts';
import { ids, IM_END, THINK, END_THINK } from '../generation/_fixtures.ts';

const CHROMIUM = process.env.SEEDVL_CHROMIUM ?? '/usr/bin/chromium';

test('playground: image in, streamed answer out, box drawn', { skip: !existsSync(CHROMIUM) && `no chromium at ${CHROMIUM}` }, async () => {
  const answer = [THINK, ...ids('ok'), END_THINK, ...ids('A cat <bbox>250 500 750 900</bbox>'), IM_END];
  const srv = await startTestServer({ answer });
  const profile = mkdtempSync(join(tmpdir(), 'seedvl-chromium-'));
  const imagePath = join(profile, 'cat.png');
  writeFileSync(imagePath, await sharp({ create: { width: 400, height: 200, channels: 3, background: { r: 240, g: 240, b: 240 } } }).png().toBuffer());
  // A fresh profile directory (playwright passes it as --user-data-dir).
  const browser = await chromium.launchPersistentContext(join(profile, 'user-data'), {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1200, height: 800 },
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
  });
  try {
    const page = await browser.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(srv.url);
    await page.waitForFunction(() => document.getElementById('model')!.textContent === 'tiny-test', null, { timeout: 10_000 });
    await page.setInputFiles('#file', imagePath);
    await page.waitForFunction(() => (document.getElementById('image') as HTMLImageElement).naturalWidth === 400, null, { timeout: 10_000 });
    await page.fill('#question', 'Where is the cat?');
    await page.check('#thinking');
    await page.click('#send');
    await page.waitForFunction(() => (window as unknown as { __playground: { state: { done: boolean } } }).__playground.state.done, null, { timeout: 20_000 });
    assert.equal(await page.textContent('#answer'), 'A cat <bbox>250 500 750 900</bbox>');
    assert.equal(await page.textContent('#reasoning'), 'ok');
    assert.match((await page.textContent('#status'))!, /tokens in/);
    const items = await page.$$eval('#items li', (lis) => lis.map((li) => li.textContent));
    // 0–999 grid → pixels of the 400×200 original: x·400/1000, y·200/1000.
    assert.deepEqual(items, ['box [250, 500, 750, 900] → px [100, 100, 300, 180]']);
    // The box outline is on the overlay canvas; the inside is not painted.
    // (A string, so the bundler's helper names do not leak into the page.)
    const px = await page.evaluate(`(() => {
      const c = document.getElementById('overlay');
      const img = document.getElementById('image');
      const k = img.clientWidth / img.naturalWidth;
      const ctx = c.getContext('2d');
      const at = (x, y) => ctx.getImageData(Math.round(x * k), Math.round(y * k), 1, 1).data[3];
      return { edge: at(100, 140), inside: at(200, 140), outside: at(50, 50) };
    })()`);
    assert.deepEqual(px, { edge: 255, inside: 0, outside: 0 });
    assert.deepEqual(errors, []);
  } finally {
    await browser.close();
    await srv.close();
    rmSync(profile, { recursive: true, force: true });
  }
});
