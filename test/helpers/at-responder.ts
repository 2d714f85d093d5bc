import { autoDetect } from '@serialport/bindings-cpp';
import type { DeviceHandle } from '../../agent/drivers/device-driver';
import { SerialDriver } from '../../agent/drivers/serial-driver';

/**
 * An AT-style instrument on the device's side of a pty: it answers each command line
 * `AT+ECHO=<text>\r` after `serviceMs` with `\r\n+ECHO: <text>\r\nOK\r\n`, written in two pieces
 * so that a response reaches the agent in more than one chunk. Commands are served one at a time,
 * in the order they arrive, as a modem does; `busyMs` sums the time spent serving.
 */
export class AtResponder {
  answered = 0;
  busyMs = 0;
  private pending = '';
  private readonly queue: string[] = [];
  private serving = false;

  private constructor(
    private readonly handle: DeviceHandle,
    private readonly serviceMs: number,
  ) {
    handle.stream.on('data', (chunk: Buffer) => {
      this.pending += chunk.toString('latin1');
      let end: number;
      while ((end = this.pending.indexOf('\r')) >= 0) {
        this.queue.push(this.pending.slice(0, end));
        this.pending = this.pending.slice(end + 1);
      }
      this.serve();
    });
    handle.stream.on('error', () => undefined);
  }

  static async open(path: string, serviceMs = 2): Promise<AtResponder> {
    const handle = await new SerialDriver(autoDetect()).open(path, { serial: null, settings: {} });
    return new AtResponder(handle, serviceMs);
  }

  private serve(): void {
    if (this.serving) return;
    const line = this.queue.shift();
    if (line === undefined) return;
    this.serving = true;
    const started = performance.now();
    const m = /^AT\+ECHO=(.*)$/.exec(line);
    const body = m ? `\r\n+ECHO: ${m[1]}\r\n` : '\r\nERROR\r\n';
    setTimeout(() => {
      this.handle.stream.write(Buffer.from(body, 'latin1'));
      setTimeout(() => {
        this.handle.stream.write(Buffer.from(m ? 'OK\r\n' : '', 'latin1'));
        this.answered++;
        this.busyMs += performance.now() - started;
        this.serving = false;
        this.serve();
      }, 1);
    }, this.serviceMs);
  }

  close(): Promise<void> {
    return this.handle.close().catch(() => undefined);
  }
}
