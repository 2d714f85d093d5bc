/**
 * The device of every path, in its own process: opens the far end of a pty pair through the same
 * serial stack the agent uses (openSerialStream: serialport with the platform binding, the
 * bindings-cpp poller workaround, flock) and writes back every byte it reads, as a loopback plug
 * would. It never stops reading while its writes wait: an echo that paused would deadlock with
 * socat, which relays both directions in one thread.
 *
 * Usage (forked with an IPC channel): node echo-device.js PATH. Sends { type: 'ready' } or
 * { type: 'failed', message }; a 'stop' message or SIGTERM closes the port and exits.
 */
import { autoDetect } from '@serialport/bindings-cpp';
import { openSerialStream } from '../../agent/drivers/open-serial-stream';
import { errorMessage } from '../../src/errors';
import { LINE } from './line-settings';

export type EchoMessage = { type: 'ready' } | { type: 'failed'; message: string };

function send(message: EchoMessage): void {
  process.send?.(message);
}

async function run(path: string): Promise<void> {
  const stream = await openSerialStream(autoDetect(), path, LINE);
  stream.on('data', (chunk: Buffer) => stream.write(chunk));
  stream.on('error', (err) => process.stderr.write(`echo ${path}: ${err.message}\n`));
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
    send({ type: 'failed', message: 'usage: echo-device.js PATH' });
    process.exit(2);
  }
  run(path).catch((err: unknown) => {
    send({ type: 'failed', message: errorMessage(err) });
    process.exit(1);
  });
}
