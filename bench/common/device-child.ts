import { autoDetect } from '@serialport/bindings-cpp';
import type { SerialPortStream } from '@serialport/stream';
import { openSerialStream } from '../../agent/drivers/open-serial-stream';
import { errorMessage } from '../../src/errors';
import { LINE } from '../data-path/line-settings';

/** What a benchmark's device process tells its parent over IPC. */
export type DeviceChildMessage = { type: 'ready' } | { type: 'failed'; message: string };

function send(message: DeviceChildMessage): void {
  process.send?.(message);
}

/**
 * The life of a benchmark's simulated device in its own process (forked with an IPC channel,
 * `node <script> PATH`): opens PATH through the serial stack the agent uses, lets `serve` answer on
 * the stream, says { type: 'ready' } or { type: 'failed', message }, and closes the port and exits
 * on a 'stop' message, SIGTERM or the parent going away.
 */
export function runDeviceChild(name: string, serve: (stream: SerialPortStream) => void): void {
  const path = process.argv[2];
  if (!path) {
    send({ type: 'failed', message: `usage: ${name}.js PATH` });
    process.exit(2);
  }
  openSerialStream(autoDetect(), path, LINE).then(
    (stream) => {
      serve(stream);
      stream.on('error', (err) => process.stderr.write(`${name} ${path}: ${err.message}\n`));
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
    },
    (err: unknown) => {
      send({ type: 'failed', message: errorMessage(err) });
      process.exit(1);
    },
  );
}
