import * as fs from 'node:fs';
import * as net from 'node:net';
import { errorCode, errorMessage, ProtocolError } from '../src/errors';
import type { Logger } from '../src/log';
import { type ControlRequest, lineWords, MAX_CONTROL_LINE, parseControlRequest } from '../src/pty/line-control';
import type { Labels, Stats } from '../src/telemetry/stats';

/** Unread answers and events a control client may leave before its events are dropped (counted). */
const MAX_UNREAD = 64 * 1024;

/** What the control channel acts on: the pty device of one mapping. */
export interface PtyControlTarget {
  control(request: ControlRequest): Promise<string>;
}

/**
 * The pty's control channel: a Unix socket beside the port (`<path>.control`, with the port's
 * owner, group and mode, so whoever may open the port may use it). One request per line, answered
 * in order (src/pty/line-control.ts); the device's modem-line changes are sent to every client as
 * `event lines …`. A malformed line is answered `error PROTOCOL_ERROR …` and the connection stays;
 * a line longer than MAX_CONTROL_LINE closes it.
 */
export class PtyControlServer {
  private readonly clients = new Set<net.Socket>();
  private readonly labels: Labels;

  private constructor(
    readonly path: string,
    private readonly server: net.Server,
    private readonly target: PtyControlTarget,
    private readonly stats: Stats,
    private readonly log: Logger,
    mappingId: string,
  ) {
    this.labels = { mapping: mappingId };
    server.on('connection', (socket) => this.serve(socket));
  }

  static async start(path: string, target: PtyControlTarget, access: { uid?: number; gid?: number; mode: number }, stats: Stats, log: Logger, mappingId: string): Promise<PtyControlServer> {
    // A socket left by an earlier sidecar of this workload is stale: nothing listens on it any more.
    fs.rmSync(path, { force: true });
    const server = net.createServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(path, () => {
        server.off('error', reject);
        resolve();
      });
    });
    fs.chmodSync(path, access.mode);
    if (access.uid !== undefined || access.gid !== undefined) fs.chownSync(path, access.uid ?? -1, access.gid ?? -1);
    return new PtyControlServer(path, server, target, stats, log, mappingId);
  }

  /** Tells every client the device's modem lines changed. */
  modemLines(bits: number): void {
    const line = `event lines ${lineWords(bits)}\n`;
    for (const socket of this.clients) {
      if (socket.writableLength > MAX_UNREAD) this.stats.add('pty_control_events_dropped', 1, this.labels);
      else socket.write(line);
    }
  }

  close(): Promise<void> {
    for (const socket of this.clients) socket.destroy();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  private serve(socket: net.Socket): void {
    this.clients.add(socket);
    let pending = '';
    let chain: Promise<unknown> = Promise.resolve();
    const answer = (line: string): void => {
      if (!socket.destroyed) socket.write(`${line}\n`);
    };
    socket.setEncoding('latin1');
    socket.on('data', (text: string) => {
      pending += text;
      let nl: number;
      while ((nl = pending.indexOf('\n')) >= 0) {
        const line = pending.slice(0, nl);
        pending = pending.slice(nl + 1);
        chain = chain.then(() => this.handle(line)).then(answer);
      }
      if (pending.length > MAX_CONTROL_LINE) {
        this.stats.add('pty_control_errors', 1, { ...this.labels, code: 'PROTOCOL_ERROR' });
        answer(`error PROTOCOL_ERROR line longer than ${MAX_CONTROL_LINE} characters; closing`);
        socket.end();
        pending = '';
      }
    });
    socket.on('error', (err) => this.log.debug({ error: err.message }, 'pty control client error'));
    socket.once('close', () => this.clients.delete(socket));
  }

  private async handle(line: string): Promise<string> {
    try {
      if (line.trim() === '') throw new ProtocolError('empty request');
      const request = parseControlRequest(line);
      this.stats.add('pty_control_requests', 1, { ...this.labels, verb: request.verb === 'set' ? request.setting : request.verb });
      return await this.target.control(request);
    } catch (err) {
      const code = errorCode(err, 'INTERNAL');
      this.stats.add('pty_control_errors', 1, { ...this.labels, code });
      return `error ${code} ${errorMessage(err).replace(/\n/g, ' ')}`;
    }
  }
}
