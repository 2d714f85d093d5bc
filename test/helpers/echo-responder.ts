import { SerialPort } from 'serialport';

/** The device's side of a pty pair: echoes every byte back, as a loopback plug would. */
export class EchoResponder {
  received = 0;

  private constructor(private readonly port: SerialPort) {
    port.on('data', (chunk: Buffer) => {
      this.received += chunk.length;
      port.write(chunk);
    });
    port.on('error', () => undefined);
  }

  static open(path: string): Promise<EchoResponder> {
    return new Promise((resolve, reject) => {
      const port = new SerialPort({ path, baudRate: 115200, lock: false }, (err) => {
        if (err) reject(err);
        else resolve(new EchoResponder(port));
      });
    });
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      if (!this.port.isOpen) {
        resolve();
        return;
      }
      this.port.close(() => resolve());
    });
  }
}
