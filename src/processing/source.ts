/**
 * Turn a media reference (file path, file:// URL, data: URL, http(s) URL, or bytes)
 * into bytes. Network access happens only when the caller opts in, with a size cap
 * and a time limit, because a URL inside a chat request is untrusted input.
 */
import { readFile, stat } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { MediaError, describeInput } from './errors.ts';

/** Anything that names or holds an encoded media file. */
export type MediaSource = string | URL | Uint8Array;

export interface FetchOptions {
  /** Allow http(s) URLs. Off by default: a URL is fetched only when the caller says so. */
  allowNetwork?: boolean;
  /** Largest accepted encoded size in bytes (default 64 MiB). */
  maxBytes?: number;
  /** Time limit for a network fetch in milliseconds (default 15 s). */
  timeoutMs?: number;
}

export const DEFAULT_MAX_BYTES = 64 * 1024 * 1024;
export const DEFAULT_TIMEOUT_MS = 15_000;

export interface MediaBytes {
  bytes: Uint8Array;
  /** Printable name of the input for error messages. */
  label: string;
  /** MIME type from a data: URL or an HTTP response, when known. */
  mimeType?: string;
}

export type SourceKind = 'bytes' | 'data_url' | 'http_url' | 'file';

export function sourceKind(source: MediaSource): SourceKind {
  if (source instanceof Uint8Array) return 'bytes';
  const s = source instanceof URL ? source.href : source;
  if (/^data:/i.test(s)) return 'data_url';
  if (/^https?:\/\//i.test(s)) return 'http_url';
  return 'file';
}

/** Resolve a file path (or file:// URL) without reading it; other kinds return undefined. */
export function localPath(source: MediaSource): string | undefined {
  if (source instanceof Uint8Array) return undefined;
  const s = source instanceof URL ? source.href : source;
  if (/^file:\/\//i.test(s)) return fileURLToPath(s);
  return sourceKind(s) === 'file' ? s : undefined;
}

export async function readMediaBytes(source: MediaSource, opts: FetchOptions = {}): Promise<MediaBytes> {
  const maxBytes = opts.maxBytes ?? DEFAULT_MAX_BYTES;
  const label = describeInput(source instanceof URL ? source.href : source);
  const kind = sourceKind(source);
  if (kind === 'bytes') {
    const bytes = source as Uint8Array;
    if (bytes.byteLength > maxBytes) throw new MediaError('too_large', `input of ${bytes.byteLength} bytes exceeds the ${maxBytes}-byte limit`, label);
    return { bytes, label };
  }
  const s = source instanceof URL ? source.href : (source as string);
  if (kind === 'data_url') return decodeDataUrl(s, maxBytes, label);
  if (kind === 'http_url') return fetchUrl(s, opts, maxBytes, label);
  const path = localPath(s)!;
  let size: number;
  try {
    const st = await stat(path);
    if (!st.isFile()) throw new MediaError('not_found', 'not a regular file', label);
    size = st.size;
  } catch (e) {
    if (e instanceof MediaError) throw e;
    throw new MediaError('not_found', 'cannot read file', label, { cause: e });
  }
  if (size > maxBytes) throw new MediaError('too_large', `file of ${size} bytes exceeds the ${maxBytes}-byte limit`, label);
  return { bytes: await readFile(path), label };
}

function decodeDataUrl(url: string, maxBytes: number, label: string): MediaBytes {
  const comma = url.indexOf(',');
  if (comma < 0) throw new MediaError('invalid_input', 'malformed data: URL (no comma)', label);
  const meta = url.slice(5, comma);
  const payload = url.slice(comma + 1);
  const isBase64 = /;base64$/i.test(meta);
  const mimeType = meta.replace(/;base64$/i, '').split(';')[0] || undefined;
  // Base64 expands 3 bytes into 4 characters; check before decoding to bound memory.
  const estimated = isBase64 ? Math.floor((payload.length * 3) / 4) : payload.length;
  if (estimated > maxBytes) throw new MediaError('too_large', `data: URL of about ${estimated} bytes exceeds the ${maxBytes}-byte limit`, label);
  if (isBase64 && !/^[A-Za-z0-9+/=_\-\s]*$/.test(payload)) {
    throw new MediaError('invalid_input', 'data: URL has invalid base64', label);
  }
  const bytes = isBase64 ? Buffer.from(payload, 'base64') : Buffer.from(decodeURIComponent(payload), 'latin1');
  if (bytes.byteLength === 0) throw new MediaError('invalid_input', 'data: URL is empty', label);
  return { bytes, label, ...(mimeType ? { mimeType } : {}) };
}

async function fetchUrl(url: string, opts: FetchOptions, maxBytes: number, label: string): Promise<MediaBytes> {
  if (!opts.allowNetwork) {
    throw new MediaError('network_disabled', 'fetching URLs is disabled; pass allowNetwork: true to allow it', label);
  }
  const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const signal = AbortSignal.timeout(timeoutMs);
  let res: Response;
  try {
    res = await fetch(url, { signal, redirect: 'follow' });
  } catch (e) {
    const timedOut = signal.aborted;
    throw new MediaError('network_failed', timedOut ? `fetch timed out after ${timeoutMs} ms` : `fetch failed: ${(e as Error).message}`, label, { cause: e });
  }
  if (!res.ok) {
    await res.body?.cancel().catch(() => undefined);
    throw new MediaError('network_failed', `HTTP ${res.status} ${res.statusText}`.trim(), label);
  }
  const declared = Number(res.headers.get('content-length') ?? NaN);
  if (Number.isFinite(declared) && declared > maxBytes) {
    await res.body?.cancel().catch(() => undefined);
    throw new MediaError('too_large', `response of ${declared} bytes exceeds the ${maxBytes}-byte limit`, label);
  }
  const chunks: Uint8Array[] = [];
  let total = 0;
  try {
    const reader = res.body!.getReader();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      total += value.byteLength;
      if (total > maxBytes) {
        await reader.cancel().catch(() => undefined);
        throw new MediaError('too_large', `response exceeds the ${maxBytes}-byte limit`, label);
      }
      chunks.push(value);
    }
  } catch (e) {
    if (e instanceof MediaError) throw e;
    throw new MediaError('network_failed', signal.aborted ? `fetch timed out after ${timeoutMs} ms` : `reading the response failed: ${(e as Error).message}`, label, { cause: e });
  }
  const mimeType = res.headers.get('content-type')?.split(';')[0]?.trim();
  return { bytes: Buffer.concat(chunks), label, ...(mimeType ? { mimeType } : {}) };
}
