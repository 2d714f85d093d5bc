import { strict as assert } from 'node:assert';
import * as net from 'node:net';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { AgentPool } from '../../../sidecar/agent-pool';
import { GrpcDeviceListener } from '../../../sidecar/grpc-device-listener';
import type { DeviceMeshError } from '../../../src/errors';
import { DEVICEMESH_PROTO_ROOT } from '../../../src/proto/paths';
import { FramedConnection, type OpenDecision } from '../../../src/socket-plane/connection';
import type { ErrorPayload, OpenRequest } from '../../../src/socket-plane/control-messages';
import { CommandOp, type CommandRequest } from '../../../src/socket-plane/device-command';
import { DeviceEventType, eventTimestamp } from '../../../src/socket-plane/device-event';
import type { Session } from '../../../src/socket-plane/session';
import { Stats } from '../../../src/telemetry/stats';
import { dialTcp } from '../../helpers/processes';
import { mapping, testLogger, waitUntil, WORKLOAD } from './helpers';

/** The device end of one session: what it received, credit withheld while `holding`. */
class AgentSession {
  readonly received: Buffer[] = [];
  receivedLength = 0;
  readonly closed: Promise<DeviceMeshError | undefined>;
  private held = 0;

  constructor(
    readonly session: Session,
    private holding: boolean,
  ) {
    this.closed = new Promise((resolve) => session.once('close', resolve));
  }

  /** Starts consuming: gives back the credit held so far. */
  release(): void {
    this.holding = false;
    this.session.consumed(this.held);
    this.held = 0;
  }

  hold(chunk: Buffer): boolean {
    this.received.push(chunk);
    this.receivedLength += chunk.length;
    if (this.holding) this.held += chunk.length;
    return this.holding;
  }
}

/**
 * The agent end of the socket plane, as real as the sidecar's: a FramedConnection server that
 * decides OPENs, echoes bytes with flow control, answers GPIO_GET and SCPI_QUERY, refuses other ops.
 */
class InTestAgent {
  readonly opens: OpenRequest[] = [];
  readonly commands: CommandRequest[] = [];
  readonly sessions: AgentSession[] = [];
  refusal: ErrorPayload | undefined;
  /** Sessions from now on keep what they receive instead of echoing it, and grant no credit until released. */
  holdInput = false;
  private readonly sockets = new Set<net.Socket>();

  private constructor(
    private readonly server: net.Server,
    readonly address: string,
  ) {
    server.on('connection', (socket: net.Socket) => {
      this.sockets.add(socket);
      socket.once('close', () => this.sockets.delete(socket));
      new FramedConnection(socket, 'server').on('open', (decision: OpenDecision) => this.onOpen(decision));
    });
  }

  static async start(): Promise<InTestAgent> {
    const server = net.createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return new InTestAgent(server, `127.0.0.1:${(server.address() as net.AddressInfo).port}`);
  }

  /** Bytes the agent has put on its sockets: what the sidecar's credit let through. */
  get bytesWritten(): number {
    return [...this.sockets].reduce((sum, s) => sum + s.bytesWritten, 0);
  }

  close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  private onOpen(decision: OpenDecision): void {
    this.opens.push(decision.request);
    if (this.refusal) {
      decision.refuse(this.refusal);
      return;
    }
    const session = decision.accept();
    const side = new AgentSession(session, this.holdInput);
    this.sessions.push(side);
    let unacknowledged = 0;
    session.on('data', (chunk: Buffer) => {
      if (side.hold(chunk)) return;
      if (this.holdInput) session.consumed(chunk.length);
      else if (session.write(chunk)) session.consumed(chunk.length);
      else unacknowledged += chunk.length;
    });
    session.on('drain', () => {
      session.consumed(unacknowledged);
      unacknowledged = 0;
    });
    session.on('end', () => session.end());
    session.on('command', (cmd: CommandRequest) => {
      this.commands.push(cmd);
      const { requestId } = cmd;
      if (cmd.op === CommandOp.GpioGet) {
        session.respond({ requestId, ok: true, value: cmd.target === '17' ? 1 : 0, data: Buffer.alloc(0) });
      } else if (cmd.op === CommandOp.ScpiQuery) {
        session.respond({ requestId, ok: true, value: 0, data: Buffer.concat([Buffer.from('answer to '), cmd.data]) });
      } else {
        session.respond({ requestId, ok: false, code: 'UNIMPLEMENTED', message: `${CommandOp[cmd.op]} is not a command of this device` });
      }
    });
  }
}

/* ---- the app: a plain grpc-js client from the .proto, with options an app might choose ---- */

interface AppCommandResult {
  requestId: number;
  ok: boolean;
  value: number;
  data: Buffer;
  error: { code: string; message: string } | null;
}

interface AppResponse {
  response: 'opened' | 'data' | 'commandResult' | 'event';
  opened?: { mappingId: string; device: string; kind: string };
  data?: Buffer;
  commandResult?: AppCommandResult;
  event?: { type: string; timestamp: { seconds: string; nanos: number }; source: string; value: number; data: Buffer };
}

type AppRequest =
  | { data: Buffer }
  | { command: { requestId: number; op: string; target?: string; value?: number; data?: Buffer } }
  | { endOfInput: Record<string, never> };

type DeviceCall = grpc.ClientDuplexStream<AppRequest, AppResponse>;

function deviceSessionClient(): grpc.ServiceClientConstructor {
  const definition = protoLoader.loadSync('devicemesh/v1/device.proto', {
    includeDirs: [DEVICEMESH_PROTO_ROOT],
    keepCase: false,
    longs: String,
    enums: String,
    defaults: true,
    oneofs: true,
  });
  const v1 = (grpc.loadPackageDefinition(definition).devicemesh as grpc.GrpcObject).v1 as grpc.GrpcObject;
  return v1.DeviceSession as grpc.ServiceClientConstructor;
}

/** One Open call, collecting its responses and its final status. */
class AppCall {
  readonly responses: AppResponse[] = [];
  readonly status: Promise<grpc.StatusObject>;

  constructor(readonly call: DeviceCall) {
    call.on('data', (response: AppResponse) => this.responses.push(response));
    // A non-OK status also arrives as an error; the status promise is where the tests look.
    call.on('error', () => undefined);
    this.status = new Promise((resolve) => call.once('status', resolve));
  }

  get dataLength(): number {
    return this.responses.reduce((n, r) => n + (r.data?.length ?? 0), 0);
  }

  data(): Buffer {
    return Buffer.concat(this.responses.flatMap((r) => (r.response === 'data' && r.data ? [r.data] : [])));
  }

  async waitForData(n: number): Promise<Buffer> {
    await waitUntil(() => this.dataLength >= n, `${n} bytes from the device (got ${this.dataLength})`, 20_000);
    return this.data();
  }

  async result(requestId: number): Promise<AppCommandResult> {
    const find = (): AppCommandResult | undefined => this.responses.find((r) => r.commandResult?.requestId === requestId)?.commandResult;
    await waitUntil(() => find() !== undefined, `the result of command ${requestId}`);
    return find() as AppCommandResult;
  }

  /** Writes `data` in `chunk`-byte messages, waiting for drain as a well-behaved app does. */
  async send(data: Buffer, chunk: number): Promise<void> {
    for (let offset = 0; offset < data.length; offset += chunk) {
      if (!this.call.write({ data: data.subarray(offset, offset + chunk) })) await new Promise((resolve) => this.call.once('drain', resolve));
    }
  }
}

function pattern(length: number, seed: number): Buffer {
  const b = Buffer.alloc(length);
  for (let i = 0; i < length; i++) b[i] = (i * seed + (i >> 10)) & 0xff;
  return b;
}

/** Polls `read` until it stops changing, i.e. whatever was flowing has stalled or finished. */
async function settled(read: () => number): Promise<number> {
  let last = -1;
  for (;;) {
    const now = read();
    if (now === last) return now;
    last = now;
    await new Promise((resolve) => setTimeout(resolve, 300));
  }
}

describe('sidecar: gRPC device API (a grpc-js app, GrpcDeviceListener and an in-test agent)', () => {
  const DeviceSession = deviceSessionClient();
  const labels = { mapping: 'm1', binding: 'm1', device: 'gw1/m1' };
  let agent: InTestAgent;
  let pool: AgentPool;
  let stats: Stats;
  let listener: GrpcDeviceListener;
  let client: grpc.Client;

  beforeEach(async () => {
    agent = await InTestAgent.start();
    const log = testLogger();
    pool = new AgentPool(log);
    stats = new Stats();
    const m = { ...mapping('m1', '127.0.0.1:0', agent.address, 'VIRTUAL_PROTOCOL_GRPC'), kind: 'DEVICE_KIND_GPIO' as const };
    listener = await GrpcDeviceListener.start(m, { workloadId: WORKLOAD, pool, stats, log });
    client = new DeviceSession(listener.address, grpc.credentials.createInsecure());
  });

  afterEach(async () => {
    client.close();
    await listener.close('test over');
    pool.close();
    await agent.close();
  });

  function open(): AppCall {
    return new AppCall((client as unknown as { Open(): DeviceCall }).Open());
  }

  it('says which device it opened, then relays bytes both ways in order, 1 MiB included, and ends OK', async () => {
    const app = open();
    const small = Buffer.from('hello, device');
    app.call.write({ data: small });
    assert.ok((await app.waitForData(small.length)).equals(small));
    assert.deepEqual(app.responses[0], { response: 'opened', opened: { mappingId: 'm1', device: 'gw1/m1', kind: 'DEVICE_KIND_GPIO' } });
    assert.deepEqual(agent.opens, [{ mappingId: 'm1', workloadId: WORKLOAD }]);

    const big = pattern(1024 * 1024, 7);
    await app.send(big, 100_000);
    const echoed = await app.waitForData(small.length + big.length);
    assert.ok(echoed.subarray(small.length).equals(big), '1 MiB came back changed or reordered');

    app.call.write({ endOfInput: {} });
    app.call.end();
    assert.equal((await app.status).code, grpc.status.OK);
    assert.equal((await agent.sessions[0]?.closed), undefined);
    await waitUntil(() => listener.connectionCount === 0, 'the call to be forgotten');
    assert.equal(stats.get('app_connections', labels), 1);
    assert.equal(stats.get('bytes_app_to_device', labels), small.length + big.length);
    assert.equal(stats.get('bytes_device_to_app', labels), small.length + big.length);
  });

  it('sends commands to the device and returns each result to its request id, errors as error results', async () => {
    const app = open();
    app.call.write({ command: { requestId: 101, op: 'COMMAND_OP_GPIO_GET', target: '17' } });
    app.call.write({ command: { requestId: 102, op: 'COMMAND_OP_SCPI_QUERY', data: Buffer.from('*IDN?') } });
    app.call.write({ command: { requestId: 103, op: 'COMMAND_OP_GPIO_SET', target: '4', value: 1, data: Buffer.from([9]) } });
    app.call.write({ command: { requestId: 104, op: 'COMMAND_OP_UNSPECIFIED' } });

    assert.deepEqual(await app.result(101), { requestId: 101, ok: true, value: 1, data: Buffer.alloc(0), error: null });
    assert.deepEqual((await app.result(102)).data, Buffer.from('answer to *IDN?'));
    assert.deepEqual(await app.result(103), {
      requestId: 103,
      ok: false,
      value: 0,
      data: Buffer.alloc(0),
      error: { code: 'UNIMPLEMENTED', message: 'GpioSet is not a command of this device' },
    });
    const invalid = await app.result(104);
    assert.equal(invalid.ok, false);
    assert.equal(invalid.error?.code, 'INVALID_ARGUMENT');
    assert.match(invalid.error?.message ?? '', /op COMMAND_OP_UNSPECIFIED is not a device operation/);
    // The device saw the three valid commands with their arguments intact, and not the invalid one.
    assert.deepEqual(
      agent.commands.map(({ op, target, value, data }) => ({ op, target, value, data })),
      [
        { op: CommandOp.GpioGet, target: '17', value: 0, data: Buffer.alloc(0) },
        { op: CommandOp.ScpiQuery, target: '', value: 0, data: Buffer.from('*IDN?') },
        { op: CommandOp.GpioSet, target: '4', value: 1, data: Buffer.from([9]) },
      ],
    );
    app.call.cancel();
  });

  it('forwards the device events with their time to the microsecond', async () => {
    const app = open();
    await waitUntil(() => agent.sessions.length === 1 && app.responses.length === 1, 'the session to open');
    const timestampMs = eventTimestamp();
    const event = { type: DeviceEventType.GpioEdge, timestampMs, source: '17', value: 1, data: Buffer.from([0xab]) };
    assert.equal(agent.sessions[0]?.session.sendEvent(event), true);
    await waitUntil(() => app.responses.some((r) => r.event), 'the event');
    const got = app.responses.find((r) => r.event)?.event;
    assert.ok(got);
    assert.equal(got.type, 'DEVICE_EVENT_TYPE_GPIO_EDGE');
    assert.equal(got.source, '17');
    assert.equal(got.value, 1);
    assert.deepEqual(got.data, Buffer.from([0xab]));
    const micros = BigInt(got.timestamp.seconds) * 1_000_000n + BigInt(got.timestamp.nanos / 1000);
    assert.equal(micros, BigInt(Math.round(timestampMs * 1000)));
    app.call.cancel();
  });

  it('ends the call with the mapped status and the agent message when the OPEN is refused', async () => {
    agent.refusal = { code: 'PERMISSION_DENIED', message: 'workload app1 may not use gw1/m1' };
    const app = open();
    const status = await app.status;
    assert.equal(status.code, grpc.status.PERMISSION_DENIED);
    assert.equal(status.details, 'workload app1 may not use gw1/m1');
    assert.deepEqual(app.responses, []);
    assert.equal(stats.get('app_connections_refused', { reason: 'PERMISSION_DENIED' }), 1);
    assert.equal(listener.connectionCount, 0);
  });

  it('ends the call with the mapped status when the device fails mid-session', async () => {
    const app = open();
    await waitUntil(() => agent.sessions.length === 1 && app.responses.length === 1, 'the session to open');
    agent.sessions[0]?.session.reset({ code: 'DEVICE_ERROR', message: 'gpiochip0 went away' });
    const status = await app.status;
    assert.equal(status.code, grpc.status.FAILED_PRECONDITION);
    assert.equal(status.details, 'gpiochip0 went away');
  });

  it('ends the agent session when the app cancels', async () => {
    const app = open();
    await waitUntil(() => agent.sessions.length === 1 && app.responses.length === 1, 'the session to open');
    app.call.cancel();
    const err = await agent.sessions[0]?.closed;
    assert.equal(err?.code, 'UNAVAILABLE');
    assert.match(err?.message ?? '', /cancelled/);
    assert.equal((await app.status).code, grpc.status.CANCELLED);
    await waitUntil(() => listener.connectionCount === 0, 'the call to be forgotten');
  });

  it('ends live calls with UNAVAILABLE and the reason when the listener closes, resetting their sessions', async () => {
    const app = open();
    await waitUntil(() => agent.sessions.length === 1 && app.responses.length === 1, 'the session to open');
    await listener.close('mapping m1 was removed');
    const status = await app.status;
    assert.equal(status.code, grpc.status.UNAVAILABLE);
    assert.equal(status.details, 'mapping m1 was removed');
    assert.equal((await agent.sessions[0]?.closed)?.message, 'mapping m1 was removed');
    assert.equal(listener.connectionCount, 0);
  });

  it('holds the device back while the app does not read, then delivers everything in order', async () => {
    const app = open();
    await waitUntil(() => agent.sessions.length === 1 && app.responses.length === 1, 'the session to open');
    app.call.pause();
    const flood = pattern(24 * 1024 * 1024, 13);
    const session = agent.sessions[0]?.session as Session;
    // The session queues what its credit does not cover; only credit the sidecar grants reaches the wire.
    for (let offset = 0; offset < flood.length; offset += 64 * 1024) session.write(flood.subarray(offset, offset + 64 * 1024));
    const stalledAt = await settled(() => agent.bytesWritten);
    assert.ok(stalledAt < 8 * 1024 * 1024, `${stalledAt} bytes left the agent for an app that reads nothing`);
    app.call.resume();
    assert.ok((await app.waitForData(flood.length)).equals(flood), 'the flood came back changed or reordered');
    app.call.cancel();
  });

  it('stops reading the app while the device does not consume, then delivers everything in order', async () => {
    agent.holdInput = true;
    const app = open();
    await waitUntil(() => agent.sessions.length === 1 && app.responses.length === 1, 'the session to open');
    const input = pattern(16 * 1024 * 1024, 5);
    const sending = app.send(input, 64 * 1024);
    const stalledAt = await settled(() => {
      listener.flushStats();
      return stats.get('bytes_app_to_device', labels);
    });
    assert.ok(stalledAt < 2 * 1024 * 1024, `the sidecar took ${stalledAt} bytes for a device that consumes nothing`);
    const device = agent.sessions[0] as AgentSession;
    device.release();
    await sending;
    await waitUntil(() => device.receivedLength >= input.length, 'the device to receive everything', 20_000);
    assert.ok(Buffer.concat(device.received).equals(input), 'the input reached the device changed or reordered');
    app.call.cancel();
  });

  it('applies the app connection limits as connections are accepted: one over the per-peer limit is refused and counted, the admitted call is unharmed', async () => {
    const m = { ...mapping('m2', '127.0.0.1:0', agent.address, 'VIRTUAL_PROTOCOL_GRPC'), kind: 'DEVICE_KIND_GPIO' as const };
    const limited = await GrpcDeviceListener.start(m, { workloadId: WORKLOAD, pool, stats, log: testLogger(), limits: { maxConnectionsPerPeer: 2 } });
    const limitedClient = new DeviceSession(limited.address, grpc.credentials.createInsecure());
    const port = Number(limited.address.split(':')[1]);
    const raw: net.Socket[] = [];
    const dial = async (): Promise<net.Socket> => {
      const { socket } = await dialTcp(port);
      raw.push(socket);
      return socket;
    };
    try {
      const app = new AppCall((limitedClient as unknown as { Open(): DeviceCall }).Open());
      app.call.write({ data: Buffer.from('a') });
      await app.waitForData(1);
      await dial();
      const third = await dial();
      await new Promise((resolve) => third.once('close', resolve));
      assert.equal(stats.get('app_connections_refused', { reason: 'too_many_connections_from_peer' }), 1);
      app.call.write({ data: Buffer.from('b') });
      assert.equal((await app.waitForData(2)).toString(), 'ab', 'the admitted call still relays');
      app.call.cancel();
    } finally {
      for (const socket of raw) socket.destroy();
      limitedClient.close();
      await limited.close('test over');
    }
  });

  it('closes an app connection that sends no HTTP/2 preface by the deadline, and counts it', async () => {
    const m = { ...mapping('m3', '127.0.0.1:0', agent.address, 'VIRTUAL_PROTOCOL_GRPC'), kind: 'DEVICE_KIND_GPIO' as const };
    const strict = await GrpcDeviceListener.start(m, { workloadId: WORKLOAD, pool, stats, log: testLogger(), limits: { grpcPrefaceTimeoutMs: 300 } });
    const raw: net.Socket[] = [];
    try {
      /** Sends `first` on a new connection; how long the connection then lived, ms. */
      const dial = async (first: Buffer): Promise<number> => {
        const at = Date.now();
        const { socket, closed } = await dialTcp(Number(strict.address.split(':')[1]));
        raw.push(socket);
        socket.write(first);
        await closed;
        return Date.now() - at;
      };
      // Half a preface, then nothing: closed by the deadline.
      const silent = await dial(Buffer.from('PRI * HTTP/2.0'));
      assert.ok(silent >= 250 && silent < 5000, `closed after ${silent} ms`);
      assert.equal(stats.get('app_connections_refused', { reason: 'preface_timeout' }), 1);
      // The whole preface, then an 18-byte frame of zeros: HTTP/2's to refuse, not the deadline's.
      await dial(Buffer.concat([Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'), Buffer.alloc(18)]));
      assert.equal(stats.get('app_connections_refused', { reason: 'preface_timeout' }), 1, 'a connection that sent its preface is not a preface timeout');
    } finally {
      for (const socket of raw) socket.destroy();
      await strict.close('test over');
    }
  });

  it('keeps a gRPC client that sent its preface past the deadline', async () => {
    const m = { ...mapping('m4', '127.0.0.1:0', agent.address, 'VIRTUAL_PROTOCOL_GRPC'), kind: 'DEVICE_KIND_GPIO' as const };
    const strict = await GrpcDeviceListener.start(m, { workloadId: WORKLOAD, pool, stats, log: testLogger(), limits: { grpcPrefaceTimeoutMs: 200 } });
    const c = new DeviceSession(strict.address, grpc.credentials.createInsecure());
    try {
      const app = new AppCall((c as unknown as { Open(): DeviceCall }).Open());
      app.call.write({ data: Buffer.from('a') });
      await app.waitForData(1);
      await new Promise((resolve) => setTimeout(resolve, 500));
      app.call.write({ data: Buffer.from('b') });
      assert.equal((await app.waitForData(2)).toString(), 'ab');
      assert.equal(stats.get('app_connections_refused', { reason: 'preface_timeout' }), 0);
      app.call.cancel();
    } finally {
      c.close();
      await strict.close('test over');
    }
  });
});
