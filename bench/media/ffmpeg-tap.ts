import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';

/** The real ffmpeg on PATH, or undefined when there is none. */
export function realFfmpeg(): string | undefined {
  const r = spawnSync('sh', ['-c', 'command -v ffmpeg'], { encoding: 'utf8' });
  const found = r.stdout.trim();
  return r.status === 0 && found ? found : undefined;
}

/** ffmpeg's version, as `ffmpeg -version` says it first. */
export function ffmpegVersion(ffmpeg: string): string {
  const r = spawnSync(ffmpeg, ['-version'], { encoding: 'utf8' });
  return /ffmpeg version (\S+)/.exec(r.stdout)?.[1] ?? 'unknown';
}

function quoted(text: string): string {
  return `'${text.replace(/'/g, `'\\''`)}'`;
}

/**
 * bench:media's direct reading of the very capture the agent runs: a wrapper named `ffmpeg`, first
 * on the agent's PATH, execs the real ffmpeg (same pid, so the agent's SIGTERM reaches it) with its
 * stdout through `tee`, which writes each read to the agent and then to the benchmark's FIFO. The
 * frames read off the FIFO are the agent's frames, timed as they leave ffmpeg (one write(2) after
 * the agent could have them: the added latency is understated by microseconds, not overstated),
 * so the mesh's added latency is measured frame by frame, not estimated. Only the first capture started
 * after arm() is tapped: the mesh's readiness probe opens the camera once before.
 */
export class FfmpegTap {
  private constructor(
    /** The directory to put first on the agent's PATH. */
    readonly binDir: string,
    private readonly armFile: string,
    private readonly fifo: string,
  ) {}

  static create(dir: string, ffmpeg: string): FfmpegTap {
    const binDir = path.join(dir, 'tap-bin');
    fs.mkdirSync(binDir);
    const armFile = path.join(dir, 'tap-armed');
    const fifo = path.join(dir, 'tap.fifo');
    const made = spawnSync('mkfifo', ['-m', '0600', fifo]);
    if (made.status !== 0) throw new Error(`mkfifo ${fifo} failed: ${made.stderr.toString().trim()}`);
    const script = [
      '#!/bin/bash',
      `if [ -e ${quoted(armFile)} ]; then`,
      `  rm -f ${quoted(armFile)}`,
      // tee's stdout is the agent's (a socket: it cannot be reopened as /dev/fd/N, so the agent is written first).
      `  exec ${quoted(ffmpeg)} "$@" > >(exec tee ${quoted(fifo)})`,
      'fi',
      `exec ${quoted(ffmpeg)} "$@"`,
      '',
    ].join('\n');
    fs.writeFileSync(path.join(binDir, 'ffmpeg'), script, { mode: 0o755 });
    return new FfmpegTap(binDir, armFile, fifo);
  }

  /**
   * Arms the tap for the next capture and returns the FIFO's reading end. It is opened read-write
   * (Linux allows it on a FIFO) so that it neither waits for tee nor sees an end before tee opens it.
   */
  arm(): net.Socket {
    const fd = fs.openSync(this.fifo, fs.constants.O_RDWR | fs.constants.O_NONBLOCK);
    fs.writeFileSync(this.armFile, '');
    return new net.Socket({ fd, readable: true, writable: false });
  }
}
