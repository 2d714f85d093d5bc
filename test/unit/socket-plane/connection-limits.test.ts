import { strict as assert } from 'node:assert';
import type * as net from 'node:net';
import { Duplex } from 'node:stream';
import type { DeviceMeshError } from '../../../src/errors';
import { FramedConnection, type OpenDecision } from '../../../src/socket-plane/connection';
import { encodeOpen } from '../../../src/socket-plane/control-messages';
import { encodeFrame, FrameType, PREFACE } from '../../../src/socket-plane/frame';

/** A peer socket that never reads what it is sent: every write stays queued. */
class DeafSocket extends Duplex {
  readonly remoteAddress = '192.0.2.7';
  readonly remotePort = 1;

  constructor() {
    super({ writableHighWaterMark: 1 });
  }

  setNoDelay(): this {
    return this;
  }

  setKeepAlive(): this {
    return this;
  }

  destroySoon(): void {
    this.destroy();
  }

  override _read(): void {
    // Bytes come from the test.
  }

  override _write(): void {
    // Never completes: the peer does not read.
  }
}

function closed(conn: FramedConnection): Promise<DeviceMeshError | undefined> {
  return new Promise((resolve) => conn.once('close', resolve));
}

describe('socket-plane/connection limits', () => {
  it('closes a peer that makes it queue more control frames than maxBufferedBytes without reading them', async () => {
    const socket = new DeafSocket();
    const conn = new FramedConnection(socket as unknown as net.Socket, 'server', { maxBufferedBytes: 4096 });
    const errors: DeviceMeshError[] = [];
    conn.on('protocolError', (err: DeviceMeshError) => errors.push(err));
    conn.on('open', (d: OpenDecision) => d.refuse({ code: 'NOT_FOUND', message: 'no such mapping, and a long reason to fill the queue faster' }));
    const done = closed(conn);
    const opens: Buffer[] = [PREFACE];
    for (let id = 1; id < 400; id += 2) opens.push(encodeFrame(FrameType.Open, id, encodeOpen({ mappingId: 'x', workloadId: 'app1' })));
    socket.emit('data', Buffer.concat(opens));
    const err = await done;
    assert.equal(err?.code, 'RESOURCE_EXHAUSTED');
    assert.match(err?.message ?? '', /peer is not reading: \d+ bytes queued \(limit 4096\)/);
    assert.equal(errors.length, 1, 'reported once');
    assert.ok(socket.destroyed);
  });

  it('closes a server connection that has no session for idleTimeoutMs after its preface; a session stops the countdown', async () => {
    const socket = new DeafSocket();
    const conn = new FramedConnection(socket as unknown as net.Socket, 'server', { idleTimeoutMs: 50 });
    let idle = 0;
    conn.on('idle', () => idle++);
    const done = closed(conn);
    socket.emit('data', PREFACE);
    const err = await done;
    assert.equal(idle, 1);
    assert.match(err?.message ?? '', /no session for 50 ms/);

    const busySocket = new DeafSocket();
    const busy = new FramedConnection(busySocket as unknown as net.Socket, 'server', { idleTimeoutMs: 50 });
    busy.on('open', (d: OpenDecision) => d.accept());
    busySocket.emit('data', Buffer.concat([PREFACE, encodeFrame(FrameType.Open, 1, encodeOpen({ mappingId: 'm', workloadId: 'w' }))]));
    await new Promise((r) => setTimeout(r, 150));
    assert.ok(!busy.isClosed, 'a connection with a session is not idle');
    busy.destroy();
  });

  it('closes a peer that trickles its preface past prefaceTimeoutMs', async () => {
    const socket = new DeafSocket();
    const conn = new FramedConnection(socket as unknown as net.Socket, 'server', { prefaceTimeoutMs: 60 });
    conn.on('protocolError', () => undefined);
    const done = closed(conn);
    let sent = 0;
    const timer = setInterval(() => socket.emit('data', PREFACE.subarray(sent, ++sent)), 20);
    const err = await done;
    clearInterval(timer);
    assert.ok(sent < PREFACE.length);
    assert.match(err?.message ?? '', /no socket-plane preface within the handshake timeout/);
  });
});
