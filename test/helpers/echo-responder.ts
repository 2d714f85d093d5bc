import { autoDetect } from '@serialport/bindings-cpp';
import type { DeviceHandle } from '../../agent/drivers/device-driver';
import { SerialDriver } from '../../agent/drivers/serial-driver';

/**
 * The device's side of a pty pair: echoes every byte back, as a loopback plug would. It opens the
 * pty through the agent's own serial driver, which carries the workaround for bindings-cpp's
 * poller (agent/drivers/poller-workaround.ts): with plain serialport a busy full-duplex echo
 * stalls. It never stops reading while its writes wait, as a UART receiver does; an echo that
 * paused would deadlock with socat, which relays both directions in one thread.
 */
export class EchoResponder {
  received = 0;

  private constructor(private readonly handle: DeviceHandle) {
    handle.stream.on('data', (chunk: Buffer) => {
      this.received += chunk.length;
      handle.stream.write(chunk);
    });
    handle.stream.on('error', () => undefined);
  }

  static async open(path: string): Promise<EchoResponder> {
    const driver = new SerialDriver(autoDetect());
    return new EchoResponder(await driver.open(path, { serial: null, settings: {} }));
  }

  close(): Promise<void> {
    return this.handle.close().catch(() => undefined);
  }
}
