import { autoDetect } from '@serialport/bindings-cpp';
import type { DeviceHandle } from '../../agent/drivers/device-driver';
import { SerialDriver } from '../../agent/drivers/serial-driver';

/** `$BODY*HH\r\n`: HH is the XOR of the body's bytes (NMEA 0183). */
export function nmeaSentence(body: string): string {
  let sum = 0;
  for (let i = 0; i < body.length; i++) sum ^= body.charCodeAt(i);
  return `$${body}*${sum.toString(16).toUpperCase().padStart(2, '0')}\r\n`;
}

/** The sentences in a stream of NMEA text, each checked against its checksum; a partial last line stays out. */
export function nmeaSentences(text: string): { body: string; valid: boolean }[] {
  const out: { body: string; valid: boolean }[] = [];
  for (const line of text.split('\r\n').slice(0, -1)) {
    const m = /^\$([^*]*)\*([0-9A-F]{2})$/.exec(line);
    out.push({ body: m?.[1] ?? line, valid: m !== null && nmeaSentence(m[1] as string) === `${line}\r\n` });
  }
  return out;
}

/**
 * A GPS receiver on the device side of a pty: a GGA fix every `intervalMs`, its UTC time field
 * carrying a sequence number so readers can tell missing or reordered sentences.
 */
export class NmeaSensor {
  sent = 0;
  /** Bytes the receiver got from the mesh (configuration commands). */
  received = 0;
  private readonly timer: NodeJS.Timeout;

  private constructor(
    private readonly handle: DeviceHandle,
    intervalMs: number,
  ) {
    handle.stream.on('error', () => undefined);
    handle.stream.on('data', (chunk: Buffer) => (this.received += chunk.length));
    this.timer = setInterval(() => {
      const seq = String(this.sent++).padStart(6, '0');
      handle.stream.write(nmeaSentence(`GPGGA,${seq}.00,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,`));
    }, intervalMs);
  }

  static async open(path: string, intervalMs: number): Promise<NmeaSensor> {
    const driver = new SerialDriver(autoDetect());
    return new NmeaSensor(await driver.open(path, { serial: null, settings: {} }), intervalMs);
  }

  close(): Promise<void> {
    clearInterval(this.timer);
    return this.handle.close().catch(() => undefined);
  }
}
