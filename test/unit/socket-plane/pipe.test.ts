import { strict as assert } from 'node:assert';
import { Duplex } from 'node:stream';
import { DeviceMeshError } from '../../../src/errors';
import { INITIAL_WINDOW } from '../../../src/socket-plane/frame';
import { pipeSession } from '../../../src/socket-plane/pipe';
import type { Session } from '../../../src/socket-plane/session';
import { type Loopback, loopback, once, openPair } from './loopback';

/** An app that does not read: its first write never completes, so everything after it stays unflushed. */
class StalledApp extends Duplex {
  constructor() {
    super({ writableHighWaterMark: 1 });
  }

  override _read(): void {
    // Sends nothing.
  }

  override _write(_chunk: Buffer, _encoding: BufferEncoding, _callback: (err?: Error | null) => void): void {
    // Never done: the app is not reading.
  }
}

/** Writes `total` bytes from `session` in 64 KiB chunks, waiting for credit between them. */
async function sendAll(session: Session, total: number, timeoutMs: number): Promise<void> {
  const chunk = Buffer.alloc(64 * 1024, 0x61);
  for (let sent = chunk.length; sent <= total; sent += chunk.length) {
    if (!session.write(chunk) && sent < total) await once(session, 'drain', timeoutMs);
  }
}

describe('socket plane: pipeSession when its stream is gone', () => {
  let lb: Loopback;
  beforeEach(async () => {
    lb = await loopback();
  });
  afterEach(async () => {
    await lb.close();
  });

  it('gives back the credit of every byte it drops for a destroyed stream, and counts them', async () => {
    const { client, server } = await openPair(lb);
    const app = new StalledApp();
    let dropped = 0;
    pipeSession(client, app, { dropped: (n) => (dropped += n) });
    // A window's worth reaches the app that does not read; the sender is then out of credit.
    await sendAll(server, INITIAL_WINDOW, 5_000);
    assert.equal(server.write(Buffer.from('x')), false, 'the sender should be out of credit');
    app.destroy();
    // The app is gone: four more windows must go through on the credit of what is dropped.
    await sendAll(server, 4 * INITIAL_WINDOW, 5_000);
    const total = INITIAL_WINDOW + 1 + 4 * INITIAL_WINDOW;
    // The last bytes may still be on the wire; every byte that arrived was dropped except the one the app took.
    const { setTimeout: sleep } = await import('node:timers/promises');
    await sleep(100);
    assert.ok(dropped >= total - INITIAL_WINDOW, `only ${dropped} of ${total} bytes were dropped with their credit`);
    assert.equal(client.closed, false, 'without closeWithinMs the session ends only as its peer ends it');
  });

  it('resets a session still open closeWithinMs after its stream closed, and says so', async () => {
    const { client, server } = await openPair(lb);
    const app = new StalledApp();
    let abandoned = 0;
    pipeSession(client, app, { closeWithinMs: 100, abandoned: () => abandoned++ });
    const serverClosed = once<DeviceMeshError | undefined>(server, 'close', 5_000);
    const clientClosed = once<DeviceMeshError | undefined>(client, 'close', 5_000);
    // The peer never ends its side (a device holding on): only the deadline can close the session.
    app.destroy();
    const err = await serverClosed;
    assert.ok(err instanceof DeviceMeshError, 'the peer should see a RESET');
    assert.equal(err.code, 'UNAVAILABLE');
    assert.match(err.message, /the app went away and its session had not finished 100 ms later/);
    assert.ok((await clientClosed) instanceof DeviceMeshError);
    assert.equal(abandoned, 1);
  });

  it('leaves a session that finishes in time alone', async () => {
    const { client, server } = await openPair(lb);
    const app = new StalledApp();
    let abandoned = 0;
    pipeSession(client, app, { closeWithinMs: 200, abandoned: () => abandoned++ });
    server.on('end', () => server.end());
    const clientClosed = once<DeviceMeshError | undefined>(client, 'close', 5_000);
    app.destroy();
    assert.equal(await clientClosed, undefined, 'the session should end cleanly');
    const { setTimeout: sleep } = await import('node:timers/promises');
    await sleep(300);
    assert.equal(abandoned, 0);
  });
});
