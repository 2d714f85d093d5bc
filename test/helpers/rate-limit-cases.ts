import { strict as assert } from 'node:assert';
import type { AppClient } from './app-client';
import { waitFor } from './processes';
import type { SlowReader } from './slow-reader';

/**
 * The rate-limit acceptance cases for a binding of 10 kB/s, against whichever endpoint the app
 * reached: a sidecar's listener (sharing.test.ts) or the agent's one-hop socket (one-hop.test.ts).
 */

/**
 * The app writes as fast as its socket drains; over `windowMs`, after a second that spends the
 * bucket's burst, the device receives 10 kB/s ± 10 %: the limit holds the app back.
 */
export async function holdsTenKilobytesPerSecond(app: AppClient, reader: SlowReader, windowMs: number): Promise<void> {
  const data = Buffer.alloc(1024, 0x55);
  let writing = true;
  const pump = async (): Promise<void> => {
    while (writing && !app.closed) {
      if (!app.socket.write(data)) await new Promise((r) => (app.socket.once('drain', r), app.socket.once('close', r)));
    }
  };
  const pumping = pump();
  await new Promise((r) => setTimeout(r, 1000));
  const start = { bytes: reader.received, at: performance.now() };
  await new Promise((r) => setTimeout(r, windowMs));
  const rate = (reader.received - start.bytes) / ((performance.now() - start.at) / 1000);
  console.log(`      limited binding moved ${(rate / 1000).toFixed(2)} kB/s over ${windowMs / 1000} s (limit 10 kB/s)`);
  writing = false;
  app.close();
  await pumping;
  assert.ok(rate >= 9000 && rate <= 11_000, `moved ${rate.toFixed(0)} B/s`);
}

/** 200 KiB sent in about a second to a drop-policy binding: what did not reach the device is all in `dropped()`. */
export async function dropsAndCountsEveryByte(app: AppClient, reader: SlowReader, dropped: () => Promise<number>): Promise<void> {
  const sent = 200 * 1024;
  for (let i = 0; i < sent / 1024; i++) {
    app.socket.write(Buffer.alloc(1024, 0x33));
    await new Promise((r) => setTimeout(r, 5));
  }
  const counted = await waitFor(
    'the agent to account for every byte',
    async () => {
      const n = await dropped();
      return reader.received + n === sent ? n : undefined;
    },
    15_000,
  );
  console.log(`      sent ${sent} bytes in ~1 s against a 10 kB/s drop limit: ${reader.received} reached the device, ${counted} dropped and counted`);
  assert.ok(counted > 0 && reader.received > 0);
}
