import { autoDetect } from '@serialport/bindings-cpp';
import type { BindingInterface } from '@serialport/bindings-interface';
import * as net from 'node:net';
import { EventLoopSerialStream } from '../../agent/drivers/event-loop-serial-stream';
import { LINE } from './line-settings';

/**
 * The floor of any proxy written in Node: one process, one TCP listener, each connection piped
 * straight to the pty with the agent's own serial stream, no framing, no policy. Run as a child
 * by the `node-relay` path: `node node-relay.js DEVICE PORT`; prints "listening" once it accepts.
 */
async function main(): Promise<void> {
  const [device, portText] = process.argv.slice(2);
  if (!device || !portText) throw new Error('usage: node-relay DEVICE PORT');
  const binding: BindingInterface = autoDetect();
  const server = net.createServer({ noDelay: true }, (socket) => {
    void binding
      .open({ path: device, ...LINE, lock: false })
      .then((port) => {
        const serial = new EventLoopSerialStream(device, port);
        // A connection gone while the port opened (the readiness probe) must not keep reading the pty.
        if (socket.destroyed) {
          void serial.close().catch(() => undefined);
          return;
        }
        socket.pipe(serial).pipe(socket);
        const end = (): void => {
          socket.destroy();
          void serial.close().catch(() => undefined);
        };
        socket.once('close', end);
        serial.once('error', end);
        socket.once('error', end);
      }, () => socket.destroy());
  });
  server.listen(Number(portText), '127.0.0.1', () => console.log('listening'));
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
