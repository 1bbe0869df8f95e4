/**
 * Atomic file writes: the body goes to a temporary file in the target's own
 * directory (so the rename cannot cross filesystems), is fsynced, and is then
 * renamed over the final name; the directory is fsynced so the rename itself
 * is durable. On any error the temporary file is removed and the previous
 * file (if any) is untouched, so the final name never holds a partial file.
 */
import { closeSync, fsyncSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { basename, dirname, join } from 'node:path';

/** Node writes at most 2 GiB per call; also keeps each typed-array view small. */
const CHUNK = 64 << 20;

export interface ByteSink {
  /** Writes `byteLength` bytes of `buffer` from `byteOffset`, in chunks (any size, > 4 GiB included). */
  write(buffer: ArrayBufferLike, byteOffset: number, byteLength: number): void;
  writeBytes(bytes: Uint8Array): void;
  /** Bytes written so far. */
  readonly position: number;
}

export function tempName(finalPath: string): string {
  return join(dirname(finalPath), `${basename(finalPath)}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`);
}

/** fsync a directory so renames and creations inside it survive a crash. */
export function fsyncDir(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

export function writeFileAtomic(path: string, body: (sink: ByteSink) => void): void {
  const tmp = tempName(path);
  let fd = openSync(tmp, 'wx');
  try {
    let position = 0;
    const sink: ByteSink = {
      write(buffer, byteOffset, byteLength) {
        for (let done = 0; done < byteLength; ) {
          const view = new Uint8Array(buffer, byteOffset + done, Math.min(CHUNK, byteLength - done));
          let off = 0;
          while (off < view.length) off += writeSync(fd, view, off, view.length - off);
          done += view.length;
        }
        position += byteLength;
      },
      writeBytes(bytes) {
        this.write(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      },
      get position() {
        return position;
      },
    };
    body(sink);
    fsyncSync(fd);
    closeSync(fd);
    fd = -1;
    renameSync(tmp, path);
  } catch (e) {
    if (fd >= 0) closeSync(fd);
    rmSync(tmp, { force: true });
    throw e;
  }
  fsyncDir(dirname(path));
}
