/**
 * Typed errors for the processing layer. Every error carries a machine-readable
 * `code` and a message that names both the problem and the offending input, so a
 * caller (CLI, server) can map it to a status without parsing text.
 */

export type MediaErrorCode =
  | 'decode_failed'
  | 'unsupported_format'
  | 'too_small'
  | 'too_large'
  | 'aspect_ratio'
  | 'no_video_stream'
  | 'network_disabled'
  | 'network_failed'
  | 'not_found'
  | 'invalid_input'
  | 'ffmpeg_missing'
  | 'ffmpeg_failed';

/** A media file or URL could not be turned into pixels. */
export class MediaError extends Error {
  override readonly name = 'MediaError';
  constructor(
    readonly code: MediaErrorCode,
    message: string,
    /** A short, printable description of the input (path, truncated URL, "<buffer 123 bytes>"). */
    readonly input?: string,
    options?: { cause?: unknown },
  ) {
    super(input === undefined ? message : `${message} (input: ${input})`, options);
  }
}

export type ChatErrorCode = 'invalid_message' | 'unsupported_part' | 'missing_media' | 'template';

/** A chat request was malformed (unknown part type, bad role, missing media). */
export class ChatError extends Error {
  override readonly name = 'ChatError';
  constructor(readonly code: ChatErrorCode, message: string) {
    super(message);
  }
}

export type TokenizerErrorCode = 'load_failed' | 'unknown_token' | 'invalid_config';

/** A tokenizer file could not be loaded or a required special token is missing. */
export class TokenizerError extends Error {
  override readonly name = 'TokenizerError';
  constructor(readonly code: TokenizerErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** Describe an input for error messages without dumping megabytes of data. */
export function describeInput(input: unknown): string {
  if (typeof input === 'string') {
    if (input.startsWith('data:')) return `${input.slice(0, 40)}… (${input.length} chars)`;
    return input.length > 200 ? `${input.slice(0, 200)}…` : input;
  }
  if (input instanceof Uint8Array) return `<buffer ${input.byteLength} bytes>`;
  return `<${typeof input}>`;
}
