import * as http from 'node:http';
import * as net from 'node:net';
import pino from 'pino';
import type { Logger } from '../../../src/log';
import type { Mapping, VirtualProtocol } from '../../../src/proto/types';

export const WORKLOAD = 'app1';

/** Silent unless DEVICEMESH_LOG_LEVEL says otherwise. */
export function testLogger(): Logger {
  return pino({ level: process.env.DEVICEMESH_LOG_LEVEL ?? 'silent' });
}

export { freePort } from '../../helpers/processes';

export function mapping(id: string, listen: string, agentAddress: string, protocol: VirtualProtocol = 'VIRTUAL_PROTOCOL_RAW'): Mapping {
  return {
    id,
    binding: id,
    workloadId: WORKLOAD,
    virtual: { workloadId: WORKLOAD, name: `${id}-dev`, protocol, listen },
    physicalId: `gw1/${id}`,
    hostId: 'gw1',
    devicePath: `/dev/tty-${id}`,
    kind: 'DEVICE_KIND_SERIAL',
    agentAddress,
    policy: null,
    serial: null,
    version: '1',
    settings: {},
    adaptiveLimit: null,
    roaming: false,
  };
}

/** An app's TCP connection to a virtual device, collecting what it receives. */
export class AppClient {
  readonly received: Buffer[] = [];
  receivedLength = 0;
  readonly closed: Promise<void>;
  private waiter: { n: number; resolve(): void } | undefined;

  private constructor(readonly socket: net.Socket) {
    socket.on('data', (chunk: Buffer) => {
      this.received.push(chunk);
      this.receivedLength += chunk.length;
      if (this.waiter && this.receivedLength >= this.waiter.n) this.waiter.resolve();
    });
    socket.on('error', () => undefined);
    this.closed = new Promise((resolve) => socket.once('close', () => resolve()));
  }

  static connect(address: string): Promise<AppClient> {
    const [host, port] = address.split(':') as [string, string];
    const socket = net.connect(Number(port), host);
    return new Promise((resolve, reject) => {
      socket.once('error', reject);
      socket.once('connect', () => {
        socket.off('error', reject);
        resolve(new AppClient(socket));
      });
    });
  }

  /** Resolves once `n` bytes in total have arrived. */
  waitForBytes(n: number, ms = 10_000): Promise<Buffer> {
    return withTimeout(
      new Promise<void>((resolve) => {
        if (this.receivedLength >= n) resolve();
        else this.waiter = { n, resolve };
      }),
      ms,
      `${n} bytes (got ${this.receivedLength})`,
    ).then(() => Buffer.concat(this.received));
  }

  /** Sends `data` and waits for its echo. */
  async roundTrip(data: Buffer, ms?: number): Promise<Buffer> {
    const before = this.receivedLength;
    this.socket.write(data);
    const all = await this.waitForBytes(before + data.length, ms);
    return all.subarray(before);
  }

  destroy(): void {
    this.socket.destroy();
  }
}

export function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([
    promise,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

/** Polls `check` until it returns true. */
export async function waitUntil(check: () => boolean | Promise<boolean>, what: string, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

export function httpGet(address: string, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    http
      .get(`http://${address}${path}`, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (body += chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      })
      .on('error', reject);
  });
}

/** Resolves true if a TCP connect to `address` is refused (nothing listens there). */
export function connectRefused(address: string): Promise<boolean> {
  const [host, port] = address.split(':') as [string, string];
  return new Promise((resolve) => {
    const socket = net.connect(Number(port), host);
    socket.once('connect', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', (err: NodeJS.ErrnoException) => resolve(err.code === 'ECONNREFUSED'));
  });
}
