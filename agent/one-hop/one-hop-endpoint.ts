import * as fs from 'node:fs/promises';
import * as net from 'node:net';
import { bridgeRfc2217 } from '../../src/bridge/rfc2217-bridge';
import { probeWhilePaused } from '../../src/bridge/paused-app-probe';
import { rawBridge, type SessionBridge } from '../../src/bridge/session-bridge';
import { type DeviceMeshError, errorCode, errorMessage } from '../../src/errors';
import type { Logger } from '../../src/log';
import type { Mapping, VirtualProtocol } from '../../src/proto/types';
import { DEFAULT_EVENT_BACKLOG } from '../../src/socket-plane/connection';
import { localSessionPair } from '../../src/socket-plane/local-session-pair';
import type { RefusalLog } from '../../src/security/refusal-log';
import { bindingLabels } from '../../src/telemetry/binding-labels';
import type { Stats } from '../../src/telemetry/stats';
import { refusalReason, type SessionAdmission } from '../session-admission';
import { ownSocket, prepareSocketPath, type SocketOwner } from './socket-directory';

/** What every one-hop endpoint of the agent shares. */
export interface OneHopContext {
  admission: SessionAdmission;
  /** `sessions_refused`, the socket plane's own count: a refusal is one whichever way the app came. */
  refusals: RefusalLog;
  stats: Stats;
  log: Logger;
  /** Most app connections at once per endpoint (Node drops more on accept, counted). */
  maxConnections: number;
  subnegotiationTimeoutMs?: number;
}

/** The bridges the sidecar uses for the same protocols (src/bridge): the app sees the same endpoint. */
const BRIDGES: Partial<Record<VirtualProtocol, SessionBridge>> = {
  VIRTUAL_PROTOCOL_RAW: rawBridge,
  VIRTUAL_PROTOCOL_RFC2217: bridgeRfc2217,
};

/** Session ids only name sessions in the logs; one counter for every endpoint. */
let nextSessionId = 1;

/**
 * One one-hop virtual endpoint: a Unix socket in its owner's directory that the agent serves
 * itself. Each app connection becomes a session of the same admission and device side a
 * socket-plane OPEN gets, joined to the app by the bridge of the mapping's protocol through an
 * in-process session pair (no frames, no TLS, no second process).
 */
export class OneHopEndpoint {
  private readonly connections = new Set<net.Socket>();

  private constructor(
    private current: Mapping,
    readonly owner: SocketOwner,
    private readonly server: net.Server,
    private readonly ctx: OneHopContext,
  ) {
    server.on('connection', (socket: net.Socket) => this.onConnection(socket));
    server.on('drop', () => ctx.stats.add('app_connections_refused', 1, { reason: 'too_many_connections' }));
    server.on('error', (err) => ctx.log.error({ mapping: current.id, error: err.message }, 'one-hop endpoint failed'));
  }

  /** Prepares the owner's directory, binds the socket and gives it to the owner. */
  static async start(mapping: Mapping, owner: SocketOwner, ctx: OneHopContext): Promise<OneHopEndpoint> {
    const socketPath = mapping.virtual?.path ?? '';
    await prepareSocketPath(socketPath, owner);
    // Half-open allowed: an app may send its request, shut down its side and still read the answer.
    const server = net.createServer({ allowHalfOpen: true, pauseOnConnect: true });
    server.maxConnections = ctx.maxConnections;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(socketPath, () => {
        server.off('error', reject);
        resolve();
      });
    });
    try {
      await ownSocket(socketPath, owner, mapping.virtual?.mode);
    } catch (err) {
      await closeServer(server, socketPath);
      throw err;
    }
    ctx.log.info({ mapping: mapping.id, path: socketPath, uid: owner.uid, gid: owner.gid }, 'one-hop endpoint listening');
    return new OneHopEndpoint(mapping, owner, server, ctx);
  }

  get path(): string {
    return this.current.virtual?.path ?? '';
  }

  get connectionCount(): number {
    return this.connections.size;
  }

  /** Same socket, new content: connections made from now on use it. */
  update(mapping: Mapping): void {
    this.current = mapping;
  }

  /** Stops accepting and removes the socket; live sessions end as their mapping does (the configurator resets withdrawn ones). */
  async close(): Promise<void> {
    for (const socket of this.connections) socket.destroy();
    await closeServer(this.server, this.path);
    this.ctx.log.info({ mapping: this.current.id, path: this.path }, 'one-hop endpoint closed');
  }

  private onConnection(socket: net.Socket): void {
    const { admission, stats, log } = this.ctx;
    const mapping = this.current;
    probeWhilePaused(socket);
    stats.add('app_connections', 1, bindingLabels(mapping));
    this.connections.add(socket);
    // Kept for the socket's whole life: an error after the session is gone must not go unhandled.
    socket.on('error', (err) => log.debug({ mapping: mapping.id, error: err.message }, 'app connection error'));
    socket.once('close', () => this.connections.delete(socket));
    const asker = { peer: `unix:${this.path}`, identity: `uid ${this.owner.uid}` };
    admission.open(mapping.id, mapping.workloadId, () => socket.destroyed).then(
      (admitted) => {
        if (!admitted) return;
        const pair = localSessionPair(nextSessionId++, () => socket.writableLength <= DEFAULT_EVENT_BACKLOG);
        admission.attach(admitted.port, pair.device, admitted.mapping, asker);
        // The app of a raw or RFC 2217 endpoint only sees its connection close; the reason is logged, as a sidecar logs it.
        pair.consumer.once('close', (err: DeviceMeshError | undefined) => {
          if (err) log.info({ ...bindingLabels(mapping), code: err.code, error: err.message }, 'session ended with an error');
        });
        const bridge = BRIDGES[mapping.virtual?.protocol ?? 'VIRTUAL_PROTOCOL_RAW'] ?? rawBridge;
        bridge(socket, pair.consumer, { mapping, stats, log, ...(this.ctx.subnegotiationTimeoutMs ? { subnegotiationTimeoutMs: this.ctx.subnegotiationTimeoutMs } : {}) });
      },
      (err: unknown) => {
        const code = errorCode(err, 'DEVICE_ERROR');
        this.ctx.refusals.refuse(refusalReason(code), asker.peer, { identity: asker.identity, mapping: mapping.id, workload: mapping.workloadId, code, error: errorMessage(err) }, 'session refused');
        // Raw and RFC 2217 have no error channel before a session: the app sees its connection closed, as through a sidecar.
        socket.destroy();
      },
    );
  }
}

async function closeServer(server: net.Server, socketPath: string): Promise<void> {
  await new Promise<void>((resolve) => (server.listening ? server.close(() => resolve()) : resolve()));
  await fs.rm(socketPath, { force: true });
}
