import type { Duplex } from 'node:stream';
import { DeviceError } from '../../src/errors';

/**
 * One consumer of the device: keeps one AT command outstanding on `stream` (a TCP connection to
 * the virtual device, or the pty itself), checks every response byte for byte and, while
 * `recording`, counts answers and keeps each round trip in µs in the shared `latenciesUs`.
 */
export class AtConsumer {
  answered = 0;
  mismatch: string | undefined;
  recording = false;
  private sent = 0;
  private expected = '';
  private buffer = '';
  private sentAt = 0;
  private running = true;
  private idle: (() => void) | undefined;

  constructor(
    private readonly stream: Duplex,
    private readonly id: string,
    private readonly latenciesUs: number[],
  ) {
    stream.on('data', (chunk: Buffer) => this.onData(chunk));
    stream.on('close', () => {
      if (this.expected === '') return;
      this.mismatch ??= 'the connection closed with a command outstanding';
      this.idle?.();
    });
    this.next();
  }

  /** Sends no more commands; resolves once the outstanding one is answered (or at once if it never will be). */
  stop(): Promise<void> {
    this.running = false;
    if (this.expected === '' || this.mismatch !== undefined) return Promise.resolve();
    return new Promise((resolve) => (this.idle = resolve));
  }

  /** Throws DeviceError when a response was not the one this consumer's command asked for. */
  check(): void {
    if (this.mismatch !== undefined) throw new DeviceError(`consumer ${this.id}: ${this.mismatch}`);
  }

  private next(): void {
    if (!this.running) {
      this.expected = '';
      this.idle?.();
      return;
    }
    const text = `${this.id}-${this.sent++}`;
    this.expected = `\r\n+ECHO: ${text}\r\nOK\r\n`;
    this.sentAt = performance.now();
    this.stream.write(`AT+ECHO=${text}\r`);
  }

  private onData(chunk: Buffer): void {
    this.buffer += chunk.toString('latin1');
    const want = this.expected;
    if (want === '') {
      this.mismatch ??= `unexpected ${JSON.stringify(this.buffer)}`;
      return;
    }
    if (this.buffer.length < want.length) return;
    const elapsedUs = (performance.now() - this.sentAt) * 1000;
    const got = this.buffer.slice(0, want.length);
    this.buffer = this.buffer.slice(want.length);
    if (got !== want || this.buffer.length > 0) {
      this.mismatch ??= `expected ${JSON.stringify(want)}, got ${JSON.stringify(got + this.buffer)}`;
      this.idle?.();
      return;
    }
    if (this.recording) {
      this.answered++;
      this.latenciesUs.push(elapsedUs);
    }
    this.next();
  }
}
