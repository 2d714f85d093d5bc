import * as net from 'node:net';
import { waitFor } from './processes';

/** An app on the workload side: a TCP client that keeps every byte it receives. */
export class AppClient {
  private chunks: Buffer[] = [];
  private length = 0;
  closed = false;

  private constructor(readonly socket: net.Socket) {
    socket.on('data', (c: Buffer) => {
      this.chunks.push(c);
      this.length += c.length;
    });
    socket.on('close', () => (this.closed = true));
    socket.on('error', () => undefined);
  }

  static connect(port: number, host = '127.0.0.1'): Promise<AppClient> {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ host, port }, () => {
        socket.off('error', reject);
        resolve(new AppClient(socket));
      });
      socket.once('error', reject);
    });
  }

  /** The same app on a Unix socket (a one-hop endpoint). */
  static connectPath(socketPath: string): Promise<AppClient> {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ path: socketPath }, () => {
        socket.off('error', reject);
        resolve(new AppClient(socket));
      });
      socket.once('error', reject);
    });
  }

  get received(): number {
    return this.length;
  }

  /** True once `bytes` is somewhere in what arrived and was not taken. */
  contains(bytes: Buffer): boolean {
    return Buffer.concat(this.chunks, this.length).includes(bytes);
  }

  /** Waits until `n` bytes have arrived and returns them, consuming them. */
  async take(n: number, timeoutMs = 15_000): Promise<Buffer> {
    await waitFor(`${n} bytes (have ${this.length})`, () => this.length >= n || (this.closed && Promise.reject(new Error('connection closed'))), timeoutMs);
    const all = Buffer.concat(this.chunks, this.length);
    this.chunks = [all.subarray(n)];
    this.length = all.length - n;
    return all.subarray(0, n);
  }

  /** Sends `data` and expects it back unchanged (the far end echoes). */
  async roundTrip(data: Buffer, timeoutMs = 15_000): Promise<Buffer> {
    this.socket.write(data);
    return this.take(data.length, timeoutMs);
  }

  close(): void {
    this.socket.destroy();
  }
}
