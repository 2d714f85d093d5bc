import { Duplex } from 'node:stream';
import { UnsupportedError } from '../../src/errors';

/**
 * The byte stream of a device that has none (a GPIO chip, a sensor, a HID device, whose traffic
 * is events and commands): it produces no data, and a write fails with a clear error instead of
 * vanishing. Destroying it is how its handle reports the device gone.
 */
export class ByteLessStream extends Duplex {
  constructor(private readonly what: string) {
    super();
  }

  override _read(): void {
    // Nothing ever comes: the device speaks in events.
  }

  override _write(_chunk: Buffer, _encoding: BufferEncoding, callback: (err?: Error | null) => void): void {
    callback(new UnsupportedError(`${this.what} takes commands, not a byte stream`));
  }
}
