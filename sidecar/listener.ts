import * as net from 'node:net';
import { type DeviceMeshError, errorMessage, ValidationError } from '../src/errors';
import type { Logger } from '../src/log';
import type { Mapping, VirtualProtocol } from '../src/proto/types';
import type { ConsumerSession } from '../src/socket-plane/consumer-session';
import { bindingLabels } from '../src/telemetry/binding-labels';
import type { Labels, Stats } from '../src/telemetry/stats';
import { parseHostPort } from '../src/util/address';
import type { AgentPool } from './agent-pool';
import { AppSessions, ByteReport } from './app-sessions';
import { AppConnectionGate, type AppListenerLimits } from './app-connection-limits';
import { probeWhilePaused } from '../src/bridge/paused-app-probe';
import { bridgeRfc2217 } from '../src/bridge/rfc2217-bridge';
import type { RoamingMoves } from './roaming-moves';
import { rawBridge, type SessionBridge } from '../src/bridge/session-bridge';
import { bindAppListener, drainPeriod, type VirtualListener } from './virtual-listener';

/** What every listener of a sidecar shares. */
export interface ListenerContext {
  workloadId: string;
  pool: AgentPool;
  stats: Stats;
  log: Logger;
  limits?: AppListenerLimits;
  /** Where roaming moves are shown (/config_dump); without, they are only logged and counted. */
  moves?: RoamingMoves;
}

interface AppConnection {
  socket: net.Socket;
  /** Set once the agent accepted the OPEN. */
  session: ConsumerSession | undefined;
  bytes: ByteReport;
}

/** How each TCP virtual protocol joins an app connection to its session. */
const BRIDGES: Partial<Record<VirtualProtocol, SessionBridge>> = {
  VIRTUAL_PROTOCOL_RAW: rawBridge,
  VIRTUAL_PROTOCOL_RFC2217: bridgeRfc2217,
  // The agent's Modbus codec frames the MBAP requests and answers them (exceptions included).
  VIRTUAL_PROTOCOL_MODBUS_TCP: rawBridge,
};

/**
 * Throws unless this sidecar can serve the mapping: a virtual device of a protocol it speaks on a valid address,
 * leading to a valid agent address, for this workload.
 */
export function checkServable(mapping: Mapping, workloadId: string): void {
  const where = `mapping ${mapping.id || '(no id)'}`;
  if (!mapping.id) throw new ValidationError(where, 'has no id');
  if (mapping.workloadId && mapping.workloadId !== workloadId) {
    throw new ValidationError(where, `belongs to workload ${mapping.workloadId}, not ${workloadId}`);
  }
  if (!mapping.virtual) throw new ValidationError(where, 'has no virtual endpoint');
  const protocol = mapping.virtual.protocol;
  if (protocol !== 'VIRTUAL_PROTOCOL_GRPC' && protocol !== 'VIRTUAL_PROTOCOL_PTY' && !BRIDGES[protocol]) {
    throw new ValidationError(where, `protocol ${protocol} is not one this sidecar serves (raw, rfc2217, grpc, pty, modbus-tcp)`);
  }
  const pty = protocol === 'VIRTUAL_PROTOCOL_PTY';
  if (pty && !mapping.virtual.path?.startsWith('/')) throw new ValidationError(`${where}: virtual.path`, 'a pty needs an absolute path');
  const addresses = pty ? [['agentAddress', mapping.agentAddress] as const] : [['virtual.listen', mapping.virtual.listen] as const, ['agentAddress', mapping.agentAddress] as const];
  for (const [field, value] of addresses) {
    try {
      parseHostPort(value);
    } catch (err) {
      throw new ValidationError(`${where}: ${field}`, errorMessage(err));
    }
  }
}

/**
 * The virtual device of one RAW mapping: a TCP listener whose every connection becomes a session
 * to the mapping's agent. Raw TCP has no error channel, so a refused or failed OPEN is logged and
 * counted, and the app sees its connection closed.
 */
export class VirtualDeviceListener implements VirtualListener {
  private readonly connections = new Set<AppConnection>();
  private readonly mappingLabels: Labels;
  private readonly gate: AppConnectionGate;
  private readonly sessions: AppSessions;
  private closing = false;

  private constructor(
    private current: Mapping,
    private readonly server: net.Server,
    readonly address: string,
    private readonly ctx: ListenerContext,
  ) {
    this.mappingLabels = bindingLabels(current);
    this.gate = new AppConnectionGate(server, ctx.limits, ctx.stats, ctx.log, () => this.current.id);
    this.sessions = new AppSessions(ctx, () => this.current);
    server.on('connection', (socket) => this.onConnection(socket));
  }

  /** Binds the mapping's listen address; rejects with the bind error (e.g. EADDRINUSE). */
  static async start(mapping: Mapping, ctx: ListenerContext): Promise<VirtualDeviceListener> {
    // Half-open allowed: an app may send its request, shut down its side and still read the answer.
    const server = net.createServer({ allowHalfOpen: true, pauseOnConnect: true });
    const address = await bindAppListener(server, mapping, ctx.log, 'virtual device');
    return new VirtualDeviceListener(mapping, server, address, ctx);
  }

  get mapping(): Mapping {
    return this.current;
  }

  get connectionCount(): number {
    return this.connections.size;
  }

  /** Same listen address, new content: app connections made from now on use it; live ones keep theirs, and held ones try it. */
  update(mapping: Mapping): void {
    this.current = mapping;
    this.sessions.changed();
  }

  withdraw(): void {
    this.sessions.withdraw();
  }

  /** Moves the byte counts of live connections into the stats (cheap: reads the sockets' own counters). */
  flushStats(): void {
    for (const conn of this.connections) this.report(conn);
  }

  /** Stops accepting at once; ends the connections still live after `timeoutMs`. */
  async drain(timeoutMs: number, reason: string): Promise<void> {
    this.closing = true;
    this.server.close();
    await drainPeriod(() => this.connections.size, timeoutMs);
    await this.close(reason);
  }

  /** Stops accepting and ends every live connection, telling the agent why. */
  close(reason: string): Promise<void> {
    this.closing = true;
    const closed = new Promise<void>((resolve) => {
      if (this.server.listening) this.server.close(() => resolve());
      else resolve();
    });
    for (const conn of this.connections) {
      if (conn.session) conn.session.reset({ code: 'UNAVAILABLE', message: reason });
      conn.socket.destroy();
    }
    this.ctx.log.info({ mapping: this.current.id, listen: this.address, reason }, 'virtual device closed');
    return closed;
  }

  private onConnection(socket: net.Socket): void {
    const { stats, log } = this.ctx;
    const mapping = this.current;
    if (!this.gate.admit(socket)) return;
    socket.setNoDelay(true);
    probeWhilePaused(socket);
    stats.add('app_connections', 1, this.mappingLabels);
    const conn: AppConnection = { socket, session: undefined, bytes: new ByteReport(stats, this.mappingLabels) };
    this.connections.add(conn);
    const span = this.sessions.span('app connection', mapping);
    // Kept for the socket's whole life: an error after the session is gone must not go unhandled.
    socket.on('error', (err) => log.debug({ mapping: mapping.id, error: err.message }, 'app connection error'));
    socket.once('end', () => log.debug({ mapping: mapping.id }, 'app finished sending'));
    socket.once('close', () => {
      this.connections.delete(conn);
      this.report(conn);
      span.setAttributes({ 'devicemesh.bytes_in': socket.bytesRead, 'devicemesh.bytes_out': socket.bytesWritten });
      span.end();
      log.debug({ mapping: mapping.id, bytesIn: socket.bytesRead, bytesOut: socket.bytesWritten }, 'app connection closed');
    });
    this.sessions.open(mapping, span).then(
      (session) => {
        if (this.closing || socket.destroyed) {
          session.reset({ code: 'UNAVAILABLE', message: 'the app connection closed before the session opened' });
          socket.destroy();
          return;
        }
        conn.session = session;
        session.once('close', (err: DeviceMeshError | undefined) => {
          if (err) log.info({ ...bindingLabels(mapping), code: err.code, error: err.message }, 'session ended with an error');
        });
        const bridge = BRIDGES[mapping.virtual?.protocol ?? 'VIRTUAL_PROTOCOL_RAW'] ?? rawBridge;
        bridge(socket, session, { mapping, stats, log, subnegotiationTimeoutMs: this.ctx.limits?.subnegotiationTimeoutMs });
      },
      (err: unknown) => {
        this.sessions.refused(err, mapping, span, 'closing the app connection');
        socket.destroy();
      },
    );
  }

  private report(conn: AppConnection): void {
    conn.bytes.report(conn.socket.bytesRead, conn.socket.bytesWritten);
  }
}
