/**
 * The device of every path, in its own process: opens the far end of a pty pair through the same
 * serial stack the agent uses (openSerialStream: serialport with the platform binding, the
 * bindings-cpp poller workaround, flock) and writes back every byte it reads, as a loopback plug
 * would. It never stops reading while its writes wait: an echo that paused would deadlock with
 * socat, which relays both directions in one thread.
 *
 * Usage (forked with an IPC channel): node echo-device.js PATH; see runDeviceChild.
 */
import { runDeviceChild } from '../common/device-child';

if (require.main === module) {
  runDeviceChild('echo-device', (stream) => stream.on('data', (chunk: Buffer) => stream.write(chunk)));
}
