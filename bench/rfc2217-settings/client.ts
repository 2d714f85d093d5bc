import type * as net from 'node:net';
import { connectLoopback } from '../common/bench-run';
import { ComPort, SERVER_OFFSET } from '../../src/rfc2217/com-port-option';
import { OPT_BINARY, OPT_COM_PORT, OPT_SGA } from '../../src/rfc2217/telnet-codes';
import { negotiation, subnegotiation } from '../../src/rfc2217/telnet-frames';
import { TelnetOptions } from '../../src/rfc2217/telnet-options';
import { TelnetParser } from '../../src/rfc2217/telnet-parser';

/** What this client performs, and what it asks the server to; any other option is refused. */
const LOCAL = new Set([OPT_BINARY, OPT_SGA, OPT_COM_PORT]);
const REMOTE = new Set([OPT_BINARY, OPT_SGA]);

/** How long a server has to answer one request before the bench gives up on it. */
const ANSWER_TIMEOUT_MS = 10_000;

interface Waiter {
  code: number;
  sentAt: bigint;
  resolve(answer: { value: number; micros: number }): void;
  reject(err: Error): void;
  timer: NodeJS.Timeout;
}

/**
 * A minimal RFC 2217 client, the same for every server the bench compares: it offers WILL
 * COM-PORT-OPTION (and BINARY, SGA), negotiates as the sidecar's server does (TelnetOptions), and sends one
 * COM-PORT-OPTION request at a time, timing it from just before the write to the 'data' event
 * that completed the server's answer (the request's code + 100). Everything else the server
 * sends (modem-state notifications, data) is ignored.
 */
export class Rfc2217Client {
  private readonly parser = new TelnetParser();
  private readonly options = new TelnetOptions(LOCAL, REMOTE);
  private waiter: Waiter | undefined;

  private constructor(private readonly socket: net.Socket) {
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('close', () => this.waiter?.reject(new Error('the server closed the connection')));
    socket.on('error', () => undefined);
    socket.write(Buffer.concat(this.options.start().map(([verb, option]) => negotiation(verb, option))));
  }

  static async connect(port: number): Promise<Rfc2217Client> {
    return new Rfc2217Client(await connectLoopback(port));
  }

  /** SET-BAUDRATE (4-byte value) or another numeric request (1-byte value): the value the server answered and the µs it took. */
  request(command: ComPort, value: number): Promise<{ value: number; micros: number }> {
    if (this.waiter) return Promise.reject(new Error('one request at a time'));
    const body = Buffer.alloc(command === ComPort.SetBaudRate ? 5 : 2);
    body.writeUInt8(command, 0);
    body.writeUIntBE(value, 1, body.length - 1);
    const frame = subnegotiation(OPT_COM_PORT, body);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiter = undefined;
        reject(new Error(`no answer to ${ComPort[command]} ${value} within ${ANSWER_TIMEOUT_MS} ms`));
      }, ANSWER_TIMEOUT_MS);
      this.waiter = { code: command + SERVER_OFFSET, sentAt: process.hrtime.bigint(), resolve, reject, timer };
      this.socket.write(frame);
    });
  }

  close(): Promise<void> {
    return new Promise((done) => (this.socket.destroyed ? done() : this.socket.once('close', () => done()).destroy()));
  }

  private onData(chunk: Buffer): void {
    const now = process.hrtime.bigint();
    for (const item of this.parser.push(chunk)) {
      if (item.kind === 'negotiate') {
        const answer = this.options.receive(item.verb, item.option);
        if (answer) this.socket.write(negotiation(...answer));
      }
      else if (item.kind === 'subnegotiation' && item.option === OPT_COM_PORT && item.payload[0] === this.waiter?.code) {
        const w = this.waiter;
        this.waiter = undefined;
        clearTimeout(w.timer);
        const body = item.payload.subarray(1);
        w.resolve({ value: body.length > 0 ? body.readUIntBE(0, Math.min(body.length, 4)) : 0, micros: Number(now - w.sentAt) / 1000 });
      }
    }
  }
}
