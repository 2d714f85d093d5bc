import { strict as assert } from 'node:assert';
import * as net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { probeWhilePaused } from '../../../src/bridge/paused-app-probe';

/** A real loopback connection: the sidecar's accepted socket and the app's. */
async function connection(): Promise<{ sidecar: net.Socket; app: net.Socket; close(): Promise<void> }> {
  const server = net.createServer({ allowHalfOpen: true, pauseOnConnect: true });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const accepted = new Promise<net.Socket>((resolve) => server.once('connection', resolve));
  const app = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
  app.on('error', () => undefined);
  const sidecar = await accepted;
  return {
    sidecar,
    app,
    close: async () => {
      sidecar.destroy();
      app.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

describe('sidecar: a paused app connection is probed for an app that has gone', () => {
  it('notices an app that reset its connection while the sidecar was not reading', async () => {
    const c = await connection();
    try {
      probeWhilePaused(c.sidecar, 50);
      c.sidecar.resume();
      c.sidecar.pause();
      // Unread bytes in flight, as from an app that wrote without being read.
      c.app.write(Buffer.alloc(1 << 20));
      await sleep(100);
      const failed = new Promise<NodeJS.ErrnoException>((resolve) => c.sidecar.once('error', resolve));
      c.app.resetAndDestroy();
      const err = await Promise.race([failed, sleep(2_000).then(() => undefined)]);
      assert.ok(err, 'the paused socket never noticed that its app had gone');
      assert.match(String(err.code), /ECONNRESET|EPIPE/);
    } finally {
      await c.close();
    }
  });

  it('sends nothing to an app that is still there and stops once reading resumes', async () => {
    const c = await connection();
    try {
      let received = 0;
      c.app.on('data', (chunk: Buffer) => (received += chunk.length));
      probeWhilePaused(c.sidecar, 20);
      c.sidecar.on('error', (err) => assert.fail(`unexpected ${err.message}`));
      c.sidecar.resume();
      c.sidecar.pause();
      await sleep(200);
      c.sidecar.resume();
      c.app.write('still here');
      const data = await new Promise<Buffer>((resolve) => c.sidecar.once('data', resolve));
      assert.equal(data.toString(), 'still here');
      assert.equal(received, 0);
      assert.equal(c.sidecar.destroyed, false);
    } finally {
      await c.close();
    }
  });
});
