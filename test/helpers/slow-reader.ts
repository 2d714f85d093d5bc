import { autoDetect } from '@serialport/bindings-cpp';
import type { DeviceHandle } from '../../agent/drivers/device-driver';
import { SerialDriver } from '../../agent/drivers/serial-driver';

/** The byte at offset i of the test pattern: changes every byte and never repeats with a short period. */
export function patternByte(i: number): number {
  return (i * 31 + (i >>> 13)) & 0xff;
}

/** `length` bytes of the pattern starting at `offset`. */
export function pattern(offset: number, length: number): Buffer {
  const b = Buffer.allocUnsafe(length);
  for (let i = 0; i < length; i++) b[i] = patternByte(offset + i);
  return b;
}

/**
 * A device that reads slowly: the far end of a pty that stops reading for `pauseMs` after every
 * `burst` bytes, checking every byte against the pattern as it goes (nothing is kept).
 */
export class SlowReader {
  received = 0;
  mismatchAt: number | undefined;
  private stalled = false;

  private constructor(
    private readonly handle: DeviceHandle,
    burst: number,
    pauseMs: number,
  ) {
    let sinceBreak = 0;
    handle.stream.on('data', (chunk: Buffer) => {
      for (let i = 0; i < chunk.length; i++) {
        if (this.mismatchAt === undefined && chunk[i] !== patternByte(this.received + i)) this.mismatchAt = this.received + i;
      }
      this.received += chunk.length;
      sinceBreak += chunk.length;
      if (sinceBreak >= burst) {
        sinceBreak = 0;
        handle.stream.pause();
        setTimeout(() => {
          if (!this.stalled) handle.stream.resume();
        }, pauseMs);
      }
    });
    handle.stream.on('error', () => undefined);
  }

  static async open(path: string, burst = 256 * 1024, pauseMs = 10): Promise<SlowReader> {
    const handle = await new SerialDriver(autoDetect()).open(path, { serial: null, settings: {} });
    return new SlowReader(handle, burst, pauseMs);
  }

  /** Stops reading altogether, like a device that has hung, until `release`. */
  stall(): void {
    this.stalled = true;
    this.handle.stream.pause();
  }

  release(): void {
    this.stalled = false;
    this.handle.stream.resume();
  }

  close(): Promise<void> {
    return this.handle.close().catch(() => undefined);
  }
}
