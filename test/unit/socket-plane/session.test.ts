import { strict as assert } from 'node:assert';
import { randomBytes } from 'node:crypto';
import * as net from 'node:net';
import { DeviceMeshError, ProtocolError } from '../../../src/errors';
import { FramedConnection, type OpenDecision } from '../../../src/socket-plane/connection';
import { decodeError, encodeOpen } from '../../../src/socket-plane/control-messages';
import { encodeFrame, encodeHeader, FrameType, INITIAL_WINDOW, MAX_DATA_CHUNK, PREFACE } from '../../../src/socket-plane/frame';
import { CommandOp, type CommandRequest } from '../../../src/socket-plane/device-command';
import { type DeviceEvent, DeviceEventType } from '../../../src/socket-plane/device-event';
import { FrameDecoder } from '../../../src/socket-plane/frame-decoder';
import type { Session } from '../../../src/socket-plane/session';
import { type Loopback, loopback, once, openPair } from './loopback';

const OPEN = { mappingId: 'm1', workloadId: 'app1' };


function collect(session: Session): { chunks: Buffer[]; ended: Promise<Buffer> } {
  const chunks: Buffer[] = [];
  session.on('data', (chunk: Buffer) => {
    chunks.push(Buffer.from(chunk));
    session.consumed(chunk.length);
  });
  return { chunks, ended: once(session, 'end').then(() => Buffer.concat(chunks)) };
}

describe('socket plane: sessions over loopback TCP', () => {
  let lb: Loopback;
  beforeEach(async () => {
    lb = await loopback();
  });
  afterEach(async () => {
    await lb.close();
  });

  it('carries 4 MiB to a reader that pauses, complete and in order, never over the window', async () => {
    const { client, server } = await openPair(lb);
    const data = randomBytes(4 * 1024 * 1024);

    // Sender side bookkeeping: bytes put on the wire vs credit the receiver gave back.
    let sent = 0;
    let credited = 0;
    let maxInFlight = 0;
    const sendData = lb.client.sendData.bind(lb.client);
    lb.client.sendData = (id, chunk): void => {
      sent += chunk.length;
      maxInFlight = Math.max(maxInFlight, sent - credited);
      sendData(id, chunk);
    };
    const receiveWindow = client.receiveWindow.bind(client);
    client.receiveWindow = (increment): void => {
      credited += increment;
      receiveWindow(increment);
    };

    // A slow sink: stalls briefly every few chunks, and once stops taking anything for 100 ms.
    const received: Buffer[] = [];
    let holding = false;
    let held = 0;
    server.on('data', (chunk: Buffer) => {
      received.push(Buffer.from(chunk));
      if (holding) held += chunk.length;
      else if (received.length === 20) {
        holding = true;
        held = chunk.length;
        setTimeout(() => {
          holding = false;
          server.consumed(held);
        }, 100);
      } else if (received.length % 5 === 0) setTimeout(() => server.consumed(chunk.length), 2);
      else server.consumed(chunk.length);
    });
    const ended = once(server, 'end', 20_000);

    let drains = 0;
    client.on('drain', () => drains++);
    for (let offset = 0; offset < data.length; offset += 100_000) {
      if (!client.write(data.subarray(offset, offset + 100_000))) await once(client, 'drain', 10_000);
    }
    client.end();
    await ended;

    assert.ok(Buffer.concat(received).equals(data), 'the bytes arrived changed, reordered or incomplete');
    assert.ok(maxInFlight <= INITIAL_WINDOW, `sender had ${maxInFlight} bytes in flight`);
    // The long stall used up the whole window: the sender waited rather than overrunning it.
    assert.equal(maxInFlight, INITIAL_WINDOW);
    assert.ok(drains > 0, 'the sender never had to wait for credit');
  });

  it('half-closes client first: the server still sends after the client ended', async () => {
    const { client, server } = await openPair(lb);
    const atServer = collect(server);
    const atClient = collect(client);
    client.write(Buffer.from('request'));
    client.end();
    assert.equal((await atServer.ended).toString(), 'request');
    assert.equal(server.closed, false);
    server.write(Buffer.from('response after half close'));
    const closes = [once(client, 'close'), once(server, 'close')];
    server.end();
    assert.equal((await atClient.ended).toString(), 'response after half close');
    assert.deepEqual(await Promise.all(closes), [undefined, undefined]);
    assert.equal(lb.client.sessionCount, 0);
  });

  it('half-closes server first: the client still sends after the server ended', async () => {
    const { client, server } = await openPair(lb);
    const atServer = collect(server);
    const atClient = collect(client);
    server.write(Buffer.from('banner'));
    server.end();
    assert.equal((await atClient.ended).toString(), 'banner');
    client.write(Buffer.from('still talking'));
    const closed = once(server, 'close');
    client.end();
    assert.equal((await atServer.ended).toString(), 'still talking');
    assert.equal(await closed, undefined);
  });

  it('delivers a RESET of an OPEN as a rejection with its code and message', async () => {
    lb.server.once('open', (d: OpenDecision) => {
      assert.deepEqual(d.request, OPEN);
      d.refuse({ code: 'PERMISSION_DENIED', message: 'workload app1 may not use this device' });
    });
    await assert.rejects(lb.client.openSession(OPEN), (err: unknown) => {
      assert.ok(err instanceof DeviceMeshError);
      assert.equal(err.code, 'PERMISSION_DENIED');
      assert.equal(err.message, 'workload app1 may not use this device');
      return true;
    });
    assert.equal(lb.client.sessionCount, 0);
    // The connection is still good for the next session.
    await openPair(lb);
  });

  it('aborts open sessions and pending opens when the connection dies', async () => {
    const { client } = await openPair(lb);
    lb.server.once('open', () => undefined); // never decided
    const pending = lb.client.openSession(OPEN);
    const closed = once<DeviceMeshError>(client, 'close');
    lb.server.destroy();
    const err = await closed;
    assert.equal(err.code, 'UNAVAILABLE');
    await assert.rejects(pending, (e: unknown) => e instanceof DeviceMeshError && e.code === 'UNAVAILABLE');
    await assert.rejects(lb.client.openSession(OPEN), /closed/);
  });
});

/** A socket-plane server facing a hand-driven raw TCP peer, recording the frames it sends back. */
async function rawPeer(): Promise<{
  server: FramedConnection;
  raw: net.Socket;
  frames: Array<{ type: FrameType; payload: Buffer }>;
  rawClosed: Promise<unknown>;
  close(): Promise<void>;
}> {
  const listener = net.createServer();
  await new Promise<void>((resolve) => listener.listen(0, '127.0.0.1', resolve));
  const { port } = listener.address() as net.AddressInfo;
  const accepted = once<net.Socket>(listener, 'connection');
  const raw = net.connect(port, '127.0.0.1');
  const frames: Array<{ type: FrameType; payload: Buffer }> = [];
  const decoder = new FrameDecoder((type, _session, payload) => frames.push({ type, payload: Buffer.from(payload) }));
  raw.on('data', (chunk: Buffer) => decoder.push(chunk));
  const rawClosed = once(raw, 'close');
  const server = new FramedConnection(await accepted, 'server');
  return {
    server,
    raw,
    frames,
    rawClosed,
    close: async () => {
      raw.destroy();
      server.destroy();
      await new Promise<void>((resolve) => listener.close(() => resolve()));
    },
  };
}

describe('socket plane: a misbehaving peer', () => {
  it('that sends beyond its window gets a GOAWAY with PROTOCOL_ERROR and the connection closes', async () => {
    const peer = await rawPeer();
    try {
      peer.server.on('open', (d: OpenDecision) => d.accept()); // accepted, but nobody ever consumes
      const serverClosed = once<DeviceMeshError>(peer.server, 'close');
      peer.raw.write(Buffer.concat([PREFACE, encodeFrame(FrameType.Open, 1, encodeOpen(OPEN))]));
      const chunk = Buffer.alloc(MAX_DATA_CHUNK, 0x55);
      for (let sent = 0; sent < INITIAL_WINDOW; sent += chunk.length) {
        peer.raw.write(Buffer.concat([encodeHeader(FrameType.Data, 1, chunk.length), chunk]));
      }
      peer.raw.write(Buffer.concat([encodeHeader(FrameType.Data, 1, 1), Buffer.from([1])]));

      const err = await serverClosed;
      assert.ok(err instanceof DeviceMeshError);
      assert.equal(err.code, 'PROTOCOL_ERROR');
      await peer.rawClosed;
      assert.deepEqual(peer.frames.map((f) => f.type), [FrameType.OpenOk, FrameType.GoAway]);
      const goAway = decodeError(peer.frames[1]!.payload);
      assert.equal(goAway.code, 'PROTOCOL_ERROR');
      assert.match(goAway.message, /beyond its flow-control window/);
    } finally {
      await peer.close();
    }
  });

  it('that is not a socket-plane client gets a GOAWAY naming the bad preface', async () => {
    const peer = await rawPeer();
    try {
      const serverClosed = once<DeviceMeshError>(peer.server, 'close');
      const protocolError = once<DeviceMeshError>(peer.server, 'protocolError');
      peer.raw.write('GET / HTTP/1.1\r\n\r\n');
      assert.equal((await serverClosed).code, 'PROTOCOL_ERROR');
      assert.ok((await protocolError) instanceof ProtocolError);
      await peer.rawClosed;
      assert.deepEqual(peer.frames.map((f) => f.type), [FrameType.GoAway]);
      assert.match(decodeError(peer.frames[0]!.payload).message, /bad preface/);
    } finally {
      await peer.close();
    }
  });
});

describe('socket plane: device events and commands over loopback TCP', () => {
  let lb: Loopback;
  beforeEach(async () => {
    lb = await loopback();
  });
  afterEach(async () => {
    await lb.close();
  });

  it('delivers events to the consumer in order and answers commands by request id, out of order too', async () => {
    const { client, server } = await openPair(lb);
    const events: DeviceEvent[] = [];
    client.on('event', (e: DeviceEvent) => events.push(e));
    for (let i = 0; i < 100; i++) {
      assert.ok(server.sendEvent({ type: DeviceEventType.SensorSample, timestampMs: 1000 + i, source: 'temp0', value: i / 10, data: Buffer.alloc(0) }));
    }
    const commands: CommandRequest[] = [];
    server.on('command', (c: CommandRequest) => {
      commands.push(c);
      // Answer the first only once the second came, so the replies cross.
      if (commands.length === 2) {
        for (const done of [commands[1], commands[0]] as CommandRequest[]) {
          server.respond({ requestId: done.requestId, ok: true, value: done.value * 2, data: Buffer.from(done.target) });
        }
      }
    });
    const first = client.command({ op: CommandOp.GpioGet, target: 'a', value: 1, data: Buffer.alloc(0) });
    const second = client.command({ op: CommandOp.GpioGet, target: 'b', value: 2, data: Buffer.alloc(0) });
    assert.deepEqual(await first, { value: 2, data: Buffer.from('a') });
    assert.deepEqual(await second, { value: 4, data: Buffer.from('b') });
    assert.deepEqual(events.map((e) => e.value), Array.from({ length: 100 }, (_, i) => i / 10));
  });

  it('rejects a command with the device error code and message, and pending ones when the session ends', async () => {
    const { client, server } = await openPair(lb);
    server.once('command', (c: CommandRequest) => server.respond({ requestId: c.requestId, ok: false, code: 'UNIMPLEMENTED', message: 'a serial device does not take GpioGet' }));
    await assert.rejects(client.command({ op: CommandOp.GpioGet, target: '', value: 0, data: Buffer.alloc(0) }), (err: unknown) => {
      assert.ok(err instanceof DeviceMeshError);
      assert.equal(err.code, 'UNIMPLEMENTED');
      assert.match(err.message, /does not take GpioGet/);
      return true;
    });
    const pending = client.command({ op: CommandOp.SerialDrain, target: '', value: 0, data: Buffer.alloc(0) });
    await once(server, 'command');
    server.reset({ code: 'DEVICE_ERROR', message: 'device /dev/ttyX removed' });
    await assert.rejects(pending, /device \/dev\/ttyX removed/);
  });

  it('drops events for a peer that stops reading, and says so, instead of buffering them without bound', async () => {
    const slow = await loopback({ eventBacklogLimit: 64 * 1024 });
    try {
      const { client, server } = await openPair(slow);
      let delivered = 0;
      client.on('event', () => delivered++);
      (slow.client as unknown as { socket: net.Socket }).socket.pause();
      const data = Buffer.alloc(1024);
      let sent = 0;
      let dropped = 0;
      for (let i = 0; i < 20_000; i++) {
        if (server.sendEvent({ type: DeviceEventType.HidInputReport, timestampMs: i, source: '', value: 0, data })) sent++;
        else dropped++;
      }
      assert.ok(dropped > 0, 'some events were dropped');
      (slow.client as unknown as { socket: net.Socket }).socket.resume();
      await waitUntil(() => delivered === sent);
    } finally {
      await slow.close();
    }
  });

  it('treats a COMMAND sent to a client and a COMMAND_RESULT nobody waits for as protocol errors', async () => {
    const { client } = await openPair(lb);
    const closed = once<DeviceMeshError>(lb.client, 'close');
    lb.server.sendCommandResult(client.id, { requestId: 12345, ok: true, value: 0, data: Buffer.alloc(0) });
    const err = await closed;
    assert.equal(err.code, 'PROTOCOL_ERROR');
    assert.match(err.message, /request 12345 that session 1 is not waiting for/);
  });
});

async function waitUntil(check: () => boolean, ms = 5_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}
