/**
 * The shared device, in its own process: an AT-style instrument on the far end of a pty, opened
 * through the serial stack the agent uses. Each command line `AT+ECHO=<text>\r` is answered at once
 * (service time 0, so that the figures are the path's and not the device's) with
 * `\r\n+ECHO: <text>\r\nOK\r\n`, one command at a time in arrival order, as a modem does.
 *
 * Usage (forked with an IPC channel): node at-device.js PATH; see runDeviceChild.
 */
import { runDeviceChild } from '../common/device-child';

const PREFIX = 'AT+ECHO=';

if (require.main === module) {
  runDeviceChild('at-device', (stream) => {
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
  });
}
