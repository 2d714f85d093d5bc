/**
 * The shared device, in its own process: an AT-style instrument on the far end of a pty, opened
 * through the serial stack the agent uses. Each command line `AT+ECHO=<text>\r` is answered at once
 * (service time 0, so that the figures are the path's and not the device's) with
 * `\r\n+ECHO: <text>\r\nOK\r\n`, one command at a time in arrival order, as a modem does.
 *
 * Usage (forked with an IPC channel): node at-device.js PATH. Sends { type: 'ready' } or
 * { type: 'failed', message }; a 'stop' message, SIGTERM or the parent going closes the port and exits.
 */
import { autoDetect } from '@serialport/bindings-cpp';
import { openSerialStream } from '../../agent/drivers/open-serial-stream';
import { errorMessage } from '../../src/errors';
import { LINE } from '../data-path/line-settings';

export type AtDeviceMessage = { type: 'ready' } | { type: 'failed'; message: string };

const PREFIX = 'AT+ECHO=';

function send(message: AtDeviceMessage): void {
  process.send?.(message);
}

async function run(path: string): Promise<void> {
  const stream = await openSerialStream(autoDetect(), path, LINE);
  let pending = '';
  stream.on('data', (chunk: Buffer) => {
    pending += chunk.toString('latin1');
    let out = '';
    let end: number;
    while ((end = pending.indexOf('\r')) >= 0) {
      const line = pending.slice(0, end);
      pending = pending.slice(end + 1);
      out += line.startsWith(PREFIX) ? `\r\n+ECHO: ${line.slice(PREFIX.length)}\r\nOK\r\n` : '\r\nERROR\r\n';
    }
    if (out.length > 0) stream.write(Buffer.from(out, 'latin1'));
  });
  stream.on('error', (err) => process.stderr.write(`at-device ${path}: ${err.message}\n`));
  const stop = (): void => {
    stream.close(() => process.exit(0));
    setTimeout(() => process.exit(0), 1000).unref();
  };
  process.on('message', (m) => {
    if (m === 'stop') stop();
  });
  process.on('SIGTERM', stop);
  process.on('disconnect', stop);
  send({ type: 'ready' });
}

if (require.main === module) {
  const path = process.argv[2];
  if (!path) {
    send({ type: 'failed', message: 'usage: at-device.js PATH' });
    process.exit(2);
  }
  run(path).catch((err: unknown) => {
    send({ type: 'failed', message: errorMessage(err) });
    process.exit(1);
  });
}
