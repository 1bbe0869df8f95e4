/**
 * Thin wrappers around the system `ffprobe` and `ffmpeg` (Debian package `ffmpeg`).
 * A missing binary becomes a MediaError that names the package to install.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { MediaError } from './errors.ts';

export const FFMPEG_PACKAGE_HINT = 'install the Debian package "ffmpeg" (apt-get install ffmpeg)';

export function ffprobeBinary(): string {
  return process.env['SEEDVL_FFPROBE'] ?? 'ffprobe';
}

export function ffmpegBinary(): string {
  return process.env['SEEDVL_FFMPEG'] ?? 'ffmpeg';
}

/** Run a command to completion and collect its output (for ffprobe: small JSON). */
export function runCapture(bin: string, args: string[], label: string, timeoutMs = 120_000): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    let child: ChildProcessWithoutNullStreams;
    try {
      child = spawn(bin, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    } catch (e) {
      reject(missingOr(e, bin, label));
      return;
    }
    child.stdin.end();
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => err.push(d));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(missingOr(e, bin, label));
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? -1, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') });
    });
  });
}

export function missingOr(e: unknown, bin: string, label: string): MediaError {
  if ((e as NodeJS.ErrnoException)?.code === 'ENOENT') {
    return new MediaError('ffmpeg_missing', `${bin} was not found; ${FFMPEG_PACKAGE_HINT}`, label, { cause: e });
  }
  return new MediaError('ffmpeg_failed', `${bin} could not be started: ${(e as Error)?.message}`, label, { cause: e });
}

/** Is ffprobe runnable here? Used by tests to skip with a reason. */
export async function ffmpegAvailable(): Promise<boolean> {
  try {
    const a = await runCapture(ffprobeBinary(), ['-version'], 'ffprobe -version', 10_000);
    const b = await runCapture(ffmpegBinary(), ['-version'], 'ffmpeg -version', 10_000);
    return a.code === 0 && b.code === 0;
  } catch {
    return false;
  }
}
