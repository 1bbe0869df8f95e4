// seedvl playground: attach an image, ask, stream the answer over SSE, draw the
// boxes and points the answer contains (0–999 grid → image pixels: v / 1000 · side).
(() => {
  const $ = (id) => document.getElementById(id);
  const state = { imageUrl: null, controller: null, content: '', reasoning: '', items: [], done: false };

  const NUM = '\\s*([+-]?\\d+(?:\\.\\d+)?)';
  const BOX = new RegExp(`<\\s*bbox\\s*>${NUM}[\\s,]+${NUM.slice(3)}[\\s,]+${NUM.slice(3)}[\\s,]+${NUM.slice(3)}\\s*<\\s*/\\s*bbox\\s*>`, 'gi');
  const POINT = new RegExp(`<\\s*point\\s*>${NUM}[\\s,]+${NUM.slice(3)}\\s*<\\s*/\\s*point\\s*>`, 'gi');

  /** Boxes and points in model text, with pixel coordinates for an image of width × height. */
  function parseAnnotations(text, width, height) {
    const items = [];
    const sx = (v) => (v / 1000) * width;
    const sy = (v) => (v / 1000) * height;
    for (const m of text.matchAll(BOX)) {
      const [x1, y1, x2, y2] = m.slice(1, 5).map(Number);
      items.push({ kind: 'box', raw: [x1, y1, x2, y2], pixel: [sx(Math.min(x1, x2)), sy(Math.min(y1, y2)), sx(Math.max(x1, x2)), sy(Math.max(y1, y2))], index: m.index });
    }
    for (const m of text.matchAll(POINT)) {
      const [x, y] = m.slice(1, 3).map(Number);
      items.push({ kind: 'point', raw: [x, y], pixel: [sx(x), sy(y)], index: m.index });
    }
    return items.sort((a, b) => a.index - b.index);
  }

  const COLORS = ['#e6194b', '#3cb44b', '#0082c8', '#f58231', '#911eb4', '#46f0f0', '#f032e6', '#d2f53c'];

  function draw() {
    const img = $('image');
    const canvas = $('overlay');
    if (!img.naturalWidth) return;
    canvas.width = img.clientWidth;
    canvas.height = img.clientHeight;
    const k = img.clientWidth / img.naturalWidth;
    const ctx = canvas.getContext('2d');
    ctx.clearRect(0, 0, canvas.width, canvas.height);
    state.items = parseAnnotations(state.content, img.naturalWidth, img.naturalHeight);
    const list = $('items');
    list.innerHTML = '';
    state.items.forEach((it, i) => {
      ctx.strokeStyle = ctx.fillStyle = COLORS[i % COLORS.length];
      ctx.lineWidth = 3;
      if (it.kind === 'box') {
        const [x1, y1, x2, y2] = it.pixel.map((v) => v * k);
        ctx.strokeRect(x1, y1, x2 - x1, y2 - y1);
      } else {
        const [x, y] = it.pixel.map((v) => v * k);
        ctx.beginPath();
        ctx.arc(x, y, 6, 0, 2 * Math.PI);
        ctx.fill();
      }
      const li = document.createElement('li');
      li.textContent = `${it.kind} [${it.raw.join(', ')}] → px [${it.pixel.map((v) => Math.round(v)).join(', ')}]`;
      list.appendChild(li);
    });
  }

  function setImage(file) {
    if (!file || !file.type.startsWith('image/')) return;
    const reader = new FileReader();
    reader.onload = () => {
      state.imageUrl = reader.result;
      $('image').src = state.imageUrl;
    };
    reader.readAsDataURL(file);
  }

  $('image').addEventListener('load', draw);
  window.addEventListener('resize', draw);
  $('file').addEventListener('change', (e) => setImage(e.target.files[0]));
  const drop = $('drop');
  drop.addEventListener('dragover', (e) => { e.preventDefault(); drop.classList.add('over'); });
  drop.addEventListener('dragleave', () => drop.classList.remove('over'));
  drop.addEventListener('drop', (e) => { e.preventDefault(); drop.classList.remove('over'); setImage(e.dataTransfer.files[0]); });

  async function send() {
    const question = $('question').value.trim();
    if (!question) return;
    state.content = state.reasoning = '';
    state.done = false;
    $('answer').textContent = $('reasoning').textContent = '';
    $('status').textContent = 'thinking…';
    $('status').className = '';
    const content = state.imageUrl ? [{ type: 'image_url', image_url: { url: state.imageUrl } }, { type: 'text', text: question }] : question;
    const body = {
      messages: [{ role: 'user', content }],
      stream: true,
      stream_options: { include_usage: true },
      temperature: Number($('temperature').value),
      max_tokens: Number($('maxTokens').value),
      thinking: { type: $('thinking').checked ? 'enabled' : 'disabled' },
    };
    state.controller = new AbortController();
    $('send').disabled = true;
    $('stop').disabled = false;
    const t0 = performance.now();
    try {
      const res = await fetch('/v1/chat/completions', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body), signal: state.controller.signal });
      if (!res.ok) throw new Error((await res.json()).error?.message ?? res.statusText);
      const reader = res.body.getReader();
      const dec = new TextDecoder();
      let buf = '';
      let usage = null;
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += dec.decode(value, { stream: true });
        let nl;
        while ((nl = buf.indexOf('\n\n')) >= 0) {
          const line = buf.slice(0, nl).trim();
          buf = buf.slice(nl + 2);
          if (!line.startsWith('data:')) continue;
          const data = line.slice(5).trim();
          if (data === '[DONE]') continue;
          const chunk = JSON.parse(data);
          if (chunk.error) throw new Error(chunk.error.message);
          if (chunk.usage) usage = chunk.usage;
          for (const ch of chunk.choices ?? []) {
            if (ch.delta?.reasoning_content) $('reasoning').textContent = state.reasoning += ch.delta.reasoning_content;
            if (ch.delta?.content) {
              $('answer').textContent = state.content += ch.delta.content;
              draw();
            }
          }
        }
      }
      const s = ((performance.now() - t0) / 1000).toFixed(1);
      $('status').textContent = usage ? `${usage.completion_tokens} tokens in ${s} s` : `done in ${s} s`;
    } catch (e) {
      $('status').textContent = e.name === 'AbortError' ? 'stopped' : `error: ${e.message}`;
      if (e.name !== 'AbortError') $('status').className = 'error';
    } finally {
      state.done = true;
      $('send').disabled = false;
      $('stop').disabled = true;
      draw();
    }
  }

  $('send').addEventListener('click', send);
  $('stop').addEventListener('click', () => state.controller?.abort());
  $('question').addEventListener('keydown', (e) => { if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) send(); });
  fetch('/v1/models').then((r) => r.json()).then((j) => { $('model').textContent = j.data?.map((m) => m.id).join(', ') ?? ''; }).catch(() => {});
  window.__playground = { parseAnnotations, state, draw };
})();
