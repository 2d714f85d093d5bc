import { type ChildProcess, spawn } from 'node:child_process';
import * as path from 'node:path';
import { DeviceError, UnavailableError } from '../../src/errors';
import {
  type GpioBias,
  type GpioChipLines,
  type GpioEdgeEvent,
  type GpiodGeneration,
  type GpiodetectResult,
  parseGpiodVersion,
  parseGpiodetect,
  parseGpiogetValues,
  parseGpioinfo,
  parseGpiomonEvent,
  parseGpiomonEventV2,
} from './gpiod-output';

const RUN_TIMEOUT_MS = 10_000;
const MAX_OUTPUT = 1 << 20;
/** How long a gpioset/gpiomon may take to hold its lines, and how often we look. */
const HOLD_TIMEOUT_MS = 5_000;
const HOLD_POLL_MS = 10;
const STOP_GRACE_MS = 2_000;

export interface GpioLineFlags {
  activeLow: boolean;
  bias: GpioBias;
}

/** v2 spells the bias 'disable' of v1.6 as 'disabled'; the long options are otherwise the same. */
function flagArgs(flags: GpioLineFlags, generation: GpiodGeneration): string[] {
  const bias = generation === 2 && flags.bias === 'disable' ? 'disabled' : flags.bias;
  return [...(flags.activeLow ? ['--active-low'] : []), ...(flags.bias !== 'as-is' ? [`--bias=${bias}`] : [])];
}

const delay = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * A gpioset or gpiomon that keeps running: it holds its lines (the kernel releases them when it
 * exits). stop() ends it; an exit without stop() is reported once to the exit listener.
 */
export class GpiodProcess {
  readonly exited: Promise<void>;
  private stderrText = '';
  private failure: Error | null = null;
  private done = false;
  private stopping = false;
  private exitListener: ((err: DeviceError) => void) | null = null;

  constructor(
    protected readonly child: ChildProcess,
    readonly description: string,
    spawnError: (err: Error) => Error,
  ) {
    child.stderr?.setEncoding('utf8').on('data', (text: string) => {
      if (this.stderrText.length < MAX_OUTPUT) this.stderrText += text;
    });
    this.exited = new Promise((resolve) => {
      child.once('error', (err) => {
        this.failure = spawnError(err);
      });
      child.once('close', (code, signal) => {
        this.done = true;
        if (!this.failure) this.failure = new DeviceError(`${description} exited (${code ?? signal}): ${this.stderrText.trim() || 'no message'}`);
        if (!this.stopping) this.exitListener?.(this.failure instanceof DeviceError ? this.failure : new DeviceError(this.failure.message));
        resolve();
      });
    });
  }

  get running(): boolean {
    return !this.done;
  }

  /** Why it ended (its stderr), once it has. */
  exitError(): Error {
    return this.failure ?? new DeviceError(`${this.description} is still running`);
  }

  onUnexpectedExit(listener: (err: DeviceError) => void): void {
    this.exitListener = listener;
  }

  async stop(): Promise<void> {
    if (this.done) return;
    this.stopping = true;
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), STOP_GRACE_MS);
    await this.exited;
    clearTimeout(timer);
  }
}

/** gpiomon, its events read line by line (v1.6: the default format; v2: `--format='%o %E %S'`). */
export class GpioMonitor extends GpiodProcess {
  private partial = '';
  private eventListener: ((event: GpioEdgeEvent) => void) | null = null;
  private malformedListener: ((err: DeviceError) => void) | null = null;

  constructor(
    child: ChildProcess,
    description: string,
    spawnError: (err: Error) => Error,
    private readonly parse: (line: string) => GpioEdgeEvent,
  ) {
    super(child, description, spawnError);
    child.stdout?.setEncoding('utf8').on('data', (text: string) => this.take(text));
  }

  onEvent(listener: (event: GpioEdgeEvent) => void, onMalformed: (err: DeviceError) => void): void {
    this.eventListener = listener;
    this.malformedListener = onMalformed;
  }

  private take(text: string): void {
    const lines = (this.partial + text).split('\n');
    this.partial = lines.pop() ?? '';
    if (this.partial.length > MAX_OUTPUT) {
      this.malformedListener?.(new DeviceError(`gpiomon printed ${this.partial.length} characters without a newline`));
      this.partial = '';
    }
    for (const line of lines) {
      try {
        this.eventListener?.(this.parse(line));
      } catch (err) {
        if (err instanceof DeviceError) this.malformedListener?.(err);
        else throw err;
      }
    }
  }
}

/**
 * The libgpiod command-line tools (Debian package gpiod), v1.6 or v2 — whichever is installed,
 * asked once with `gpiodetect --version` — run as child processes: the same code runs against
 * the real tools and against the fake ones of the tests, only `toolDir` (or PATH) differs.
 */
export class GpiodTools {
  private generationAnswer: Promise<GpiodGeneration> | null = null;

  /** @param toolDir where gpiodetect, gpioinfo … are; unset: found on PATH. */
  constructor(private readonly toolDir?: string) {}

  /** The installed generation; a failed look is not remembered, so installing the tools later works. */
  generation(signal?: AbortSignal): Promise<GpiodGeneration> {
    if (!this.generationAnswer) {
      const answer = this.run('gpiodetect', ['--version'], signal).then(parseGpiodVersion);
      this.generationAnswer = answer;
      answer.catch(() => {
        if (this.generationAnswer === answer) this.generationAnswer = null;
      });
    }
    return this.generationAnswer;
  }

  async detect(signal?: AbortSignal): Promise<GpiodetectResult> {
    await this.generation(signal);
    return parseGpiodetect(await this.run('gpiodetect', [], signal));
  }

  /** v2's gpioinfo takes one chip per -c; v1.6's takes the chips as arguments. */
  async info(chips: readonly string[], signal?: AbortSignal): Promise<GpioChipLines[]> {
    const generation = await this.generation(signal);
    const result =
      generation === 1
        ? parseGpioinfo(await this.run('gpioinfo', [...chips], signal), 1)
        : (await Promise.all(chips.map(async (chip) => parseGpioinfo(await this.run('gpioinfo', ['-c', chip], signal), 2)))).flat();
    if (result.length !== chips.length) throw new DeviceError(`gpioinfo described ${result.length} chips for ${chips.length} asked`);
    return result;
  }

  /** Requests the lines as inputs (that is what gpioget does), reads them and releases them. */
  async get(chip: string, offsets: readonly number[], flags: GpioLineFlags, signal?: AbortSignal): Promise<Array<0 | 1>> {
    const generation = await this.generation(signal);
    const lines = offsets.map(String);
    const args = generation === 1 ? [...flagArgs(flags, 1), chip, ...lines] : ['--numeric', ...flagArgs(flags, 2), '-c', chip, ...lines];
    const out = await this.run('gpioget', args, signal);
    return parseGpiogetValues(out, offsets.length);
  }

  /**
   * Drives one line with a gpioset that stays running (v1.6: --mode=signal; v2 does by default):
   * libgpiod releases a line when its process exits and the value need not survive that.
   * Resolves once the line is held.
   */
  async hold(chip: string, offset: number, value: 0 | 1, flags: GpioLineFlags, signal?: AbortSignal): Promise<GpiodProcess> {
    const generation = await this.generation(signal);
    const line = `${offset}=${value}`;
    const args = generation === 1 ? ['--mode=signal', ...flagArgs(flags, 1), chip, line] : [...flagArgs(flags, 2), '-c', chip, line];
    const proc = new GpiodProcess(this.spawn('gpioset', args), `gpioset ${args.join(' ')}`, (err) => this.spawnError('gpioset', err));
    await this.untilHeld(proc, chip, [offset], 'gpioset', signal);
    return proc;
  }

  /**
   * One gpiomon for the lines of a chip, both edges. v1.6 must be told --line-buffered (a pipe is
   * block-buffered otherwise and events would wait for 4 KiB); v2 flushes each event itself.
   * Resolves once the lines are held.
   */
  async monitor(chip: string, offsets: readonly number[], bias: GpioBias, signal?: AbortSignal): Promise<GpioMonitor> {
    const generation = await this.generation(signal);
    const flags = flagArgs({ activeLow: false, bias }, generation);
    const lines = offsets.map(String);
    const args = generation === 1 ? ['--line-buffered', ...flags, chip, ...lines] : ['--edges=both', '--format=%o %E %S', ...flags, '-c', chip, ...lines];
    const parse = generation === 1 ? parseGpiomonEvent : parseGpiomonEventV2;
    const mon = new GpioMonitor(this.spawn('gpiomon', args), `gpiomon ${args.join(' ')}`, (err) => this.spawnError('gpiomon', err), parse);
    await this.untilHeld(mon, chip, offsets, 'gpiomon', signal);
    return mon;
  }

  /** A process gives no sign when it has its lines: gpioinfo shows them used by it. */
  private async untilHeld(proc: GpiodProcess, chip: string, offsets: readonly number[], consumer: string, signal?: AbortSignal): Promise<void> {
    const deadline = Date.now() + HOLD_TIMEOUT_MS;
    try {
      for (;;) {
        await Promise.race([delay(HOLD_POLL_MS), proc.exited]);
        if (!proc.running) throw proc.exitError();
        const [lines] = await this.info([chip], signal);
        if (offsets.every((o) => lines.lines[o]?.used && lines.lines[o].consumer === consumer)) return;
        if (Date.now() > deadline) throw new DeviceError(`${proc.description} did not take its lines within ${HOLD_TIMEOUT_MS} ms`);
      }
    } catch (err) {
      await proc.stop();
      throw err;
    }
  }

  private command(tool: string): string {
    return this.toolDir === undefined ? tool : path.join(this.toolDir, tool);
  }

  private spawn(tool: string, args: string[]): ChildProcess {
    return spawn(this.command(tool), args, { stdio: ['ignore', 'pipe', 'pipe'] });
  }

  private spawnError(tool: string, err: Error): Error {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      const where = this.toolDir === undefined ? 'on PATH' : `in ${this.toolDir}`;
      return new UnavailableError(`${tool} not found ${where}: the GPIO driver needs the libgpiod tools, v1.6 or v2 (Debian/Ubuntu: apt install gpiod)`);
    }
    if (err.name === 'AbortError') return new DeviceError(`${tool} stopped: the device was closed`);
    return new DeviceError(`${tool}: ${err.message}`, { cause: err });
  }

  /** Runs a tool to its end; its stdout, or a DeviceError with what it said on stderr. */
  private run(tool: string, args: string[], signal?: AbortSignal): Promise<string> {
    return new Promise((resolve, reject) => {
      const child = spawn(this.command(tool), args, { stdio: ['ignore', 'pipe', 'pipe'], signal, timeout: RUN_TIMEOUT_MS });
      let out = '';
      let err = '';
      child.stdout.setEncoding('utf8').on('data', (text: string) => {
        if (out.length < MAX_OUTPUT) out += text;
      });
      child.stderr.setEncoding('utf8').on('data', (text: string) => {
        if (err.length < MAX_OUTPUT) err += text;
      });
      child.once('error', (e) => reject(this.spawnError(tool, e)));
      child.once('close', (code, sig) => {
        if (code === 0) resolve(out);
        else reject(new DeviceError(`${tool} ${args.join(' ')}: ${err.trim() || `ended with ${code ?? sig}`}`));
      });
    });
  }
}
