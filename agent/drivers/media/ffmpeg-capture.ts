import { type ChildProcessByStdio, spawn } from 'node:child_process';
import { Duplex, type Readable } from 'node:stream';
import { DeviceError, errorMessage, UnsupportedError } from '../../../src/errors';
import { MatroskaFramer } from '../../../src/media/matroska-framer';
import { type CaptureReport, CaptureReportReader, type MediaStreamInfo } from './ffmpeg-report';

/** How long ffmpeg may take to open the device and report its streams. */
const START_TIMEOUT_MS = 15_000;
/** After SIGTERM, how long ffmpeg has to finish before SIGKILL. */
const KILL_AFTER_MS = 2_000;
/** ffmpeg's last stderr lines kept to say why it stopped. */
const TAIL_LINES = 6;
/** A longer stderr line is cut: ffmpeg's own lines are short. */
const LINE_MAX = 2_000;
/** Whole frames buffered in this stream before ffmpeg's stdout is paused. */
const FRAMES_BUFFERED = 16;

export interface FfmpegCaptureOptions {
  /** The device, for messages. */
  path: string;
  ffmpeg: string;
  args: readonly string[];
  expected: MediaStreamInfo['type'];
}

/**
 * One supervised ffmpeg child capturing one device, as a Duplex of whole Matroska units: the
 * stream header first, then one cluster (one frame) per chunk, object mode so no chunk is ever
 * merged or split. `header` keeps the stream header for consumers that join later. ffmpeg's
 * stderr stream report is parsed into `report` (what the device was set up with, what consumers
 * get). The child's end, for whatever reason, destroys the stream with a DeviceError carrying
 * ffmpeg's last words; destroying the stream stops the child (SIGTERM, then SIGKILL).
 */
export class FfmpegCapture extends Duplex {
  bytesRead = 0;
  report: CaptureReport | undefined;
  private readonly framer: MatroskaFramer;
  private readonly reportReader: CaptureReportReader;
  private readonly tail: string[] = [];
  private partialLine = '';
  private child: ChildProcessByStdio<null, Readable, Readable> | undefined;
  private exited = false;

  constructor(private readonly options: FfmpegCaptureOptions) {
    super({ readableObjectMode: true, readableHighWaterMark: FRAMES_BUFFERED });
    this.reportReader = new CaptureReportReader(options.expected);
    this.framer = new MatroskaFramer((unit) => {
      if (!this.push(unit)) this.child?.stdout.pause();
    });
  }

  /** The Matroska header (EBML, Info, Tracks) a consumer needs before any frame; undefined until ffmpeg wrote it. */
  get header(): Buffer | undefined {
    return this.framer.header;
  }

  /** The ffmpeg child's process id while it runs. */
  get pid(): number | undefined {
    return this.exited ? undefined : this.child?.pid;
  }

  /** Spawns ffmpeg; resolves once it reported the streams it opened, rejects with its reason if it ends or stalls first. */
  start(): Promise<CaptureReport> {
    const { path } = this.options;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => fail(new DeviceError(`${path}: ffmpeg did not report its streams within ${START_TIMEOUT_MS} ms${this.lastWords()}`)), START_TIMEOUT_MS);
      const settle = (): void => {
        clearTimeout(timer);
        this.off('error', fail);
        this.off('reported', done);
      };
      const fail = (err: Error): void => {
        settle();
        this.destroy();
        reject(err);
      };
      const done = (): void => {
        settle();
        resolve(this.report as CaptureReport);
      };
      this.once('error', fail);
      this.once('reported', done);
      this.spawnChild();
    });
  }

  private spawnChild(): void {
    const child = spawn(this.options.ffmpeg, [...this.options.args], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    child.stdout.on('data', (chunk: Buffer) => {
      this.bytesRead += chunk.length;
      try {
        this.framer.push(chunk);
      } catch (err) {
        this.destroy(new DeviceError(`${this.options.path}: ffmpeg's output does not parse: ${errorMessage(err)}`, { cause: err }));
      }
    });
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (text: string) => this.stderrText(text));
    child.on('error', (err: NodeJS.ErrnoException) => {
      const why = err.code === 'ENOENT' ? `${this.options.ffmpeg} is not installed (Debian: apt-get install ffmpeg)` : errorMessage(err);
      this.exited = true;
      this.destroy(new DeviceError(`${this.options.path}: cannot run ffmpeg: ${why}`, { cause: err }));
    });
    child.on('exit', (code, signal) => {
      this.exited = true;
      if (this.destroyed) return;
      const how = signal ? `killed by ${signal}` : `exited with code ${code}`;
      this.destroy(new DeviceError(`${this.options.path}: the capture ended (ffmpeg ${how})${this.lastWords()}`));
    });
  }

  private stderrText(text: string): void {
    const lines = (this.partialLine + text).split(/\r?\n|\r/);
    this.partialLine = (lines.pop() ?? '').slice(0, LINE_MAX);
    for (const raw of lines) {
      const line = raw.slice(0, LINE_MAX);
      if (line.trim() === '') continue;
      this.tail.push(line);
      if (this.tail.length > TAIL_LINES) this.tail.shift();
      if (this.report) continue;
      try {
        this.report = this.reportReader.line(line) ?? undefined;
        if (this.report) this.emit('reported');
      } catch (err) {
        this.destroy(err instanceof Error ? err : new DeviceError(errorMessage(err)));
      }
    }
  }

  /** ffmpeg's last stderr lines, for an error message. */
  private lastWords(): string {
    return this.tail.length === 0 ? '' : `: ${this.tail.map((l) => l.trim()).join(' | ')}`;
  }

  override _read(): void {
    this.child?.stdout.resume();
  }

  override _write(_chunk: Buffer, _encoding: BufferEncoding, callback: (err?: Error | null) => void): void {
    callback(new UnsupportedError(`${this.options.path} is a capture device: it is read-only`));
  }

  override _destroy(err: Error | null, callback: (err?: Error | null) => void): void {
    const child = this.child;
    if (child && !this.exited) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), KILL_AFTER_MS);
      timer.unref();
      child.once('exit', () => clearTimeout(timer));
    }
    callback(err);
  }
}
