import { randomFillSync } from 'node:crypto';
import type { Duplex } from 'node:stream';

/** How often the watchdogs look for progress: one timer per measurement, not per message or chunk. */
const WATCHDOG_MS = 250;

/**
 * Runs `count` command–response round trips one after another on `stream`, whose far end echoes:
 * write a message of `messageBytes`, wait until all of it has come back, check it is the same,
 * repeat. Resolves with each round trip in microseconds, from just before the write to the
 * 'data' event that completed the echo. Fails if a message does not come back whole within
 * `timeoutMs`, comes back changed, or more comes back than was sent.
 */
export function roundTrips(stream: Duplex, messageBytes: number, count: number, timeoutMs: number): Promise<number[]> {
  return new Promise((resolve, reject) => {
    const times: number[] = [];
    const echoed = Buffer.alloc(messageBytes);
    let message = Buffer.alloc(0);
    let got = 0;
    let sentAt = 0n;
    let lastProgress = Date.now();

    const finish = (err?: Error): void => {
      clearInterval(watchdog);
      stream.off('data', onData);
      stream.off('close', onClose);
      stream.off('error', finish);
      if (err) reject(err);
      else resolve(times);
    };
    const send = (): void => {
      // Every message differs, so a late or repeated echo is caught rather than timed.
      message = Buffer.alloc(messageBytes, times.length & 0xff);
      message.writeUInt32BE(times.length, 0);
      got = 0;
      lastProgress = Date.now();
      sentAt = process.hrtime.bigint();
      stream.write(message);
    };
    const onData = (chunk: Buffer): void => {
      const done = process.hrtime.bigint();
      if (got + chunk.length > messageBytes) {
        finish(new Error(`round trip ${times.length}: ${got + chunk.length} bytes came back for a message of ${messageBytes}`));
        return;
      }
      chunk.copy(echoed, got);
      got += chunk.length;
      if (got < messageBytes) return;
      if (!echoed.equals(message)) {
        finish(new Error(`round trip ${times.length}: the message came back changed`));
        return;
      }
      times.push(Number(done - sentAt) / 1000);
      if (times.length === count) finish();
      else send();
    };
    const onClose = (): void => finish(new Error(`the connection closed after ${times.length} of ${count} round trips`));
    const watchdog = setInterval(() => {
      if (Date.now() - lastProgress > timeoutMs) {
        finish(new Error(`round trip ${times.length}: ${got} of ${messageBytes} bytes back after ${timeoutMs} ms`));
      }
    }, WATCHDOG_MS);

    stream.on('data', onData);
    stream.once('close', onClose);
    stream.once('error', finish);
    send();
  });
}

export interface BulkResult {
  bytes: number;
  /** From the first write to the 'data' event that brought the last echoed byte. */
  seconds: number;
}

/**
 * Streams `totalBytes` of random data to `stream` in `chunkBytes` writes (waiting for 'drain'
 * when the stream asks to), while reading the echo concurrently and checking every byte against
 * what was sent. Fails if no echoed byte arrives for `stallMs`, or the echo differs.
 */
export function bulkTransfer(stream: Duplex, totalBytes: number, chunkBytes: number, stallMs: number): Promise<BulkResult> {
  const data = randomFillSync(Buffer.allocUnsafe(totalBytes));
  return new Promise((resolve, reject) => {
    let received = 0;
    let written = 0;
    let finished = false;
    let lastProgress = Date.now();
    const started = process.hrtime.bigint();

    const finish = (err?: Error, ended?: bigint): void => {
      if (finished) return;
      finished = true;
      clearInterval(watchdog);
      stream.off('data', onData);
      stream.off('drain', writeMore);
      stream.off('close', onClose);
      stream.off('error', finish);
      if (err) reject(err);
      else resolve({ bytes: totalBytes, seconds: Number((ended as bigint) - started) / 1e9 });
    };
    const onData = (chunk: Buffer): void => {
      const now = process.hrtime.bigint();
      if (received + chunk.length > totalBytes) {
        finish(new Error(`${received + chunk.length} bytes came back of ${totalBytes} sent`));
        return;
      }
      if (!chunk.equals(data.subarray(received, received + chunk.length))) {
        finish(new Error(`the echo differs from what was sent within bytes ${received}..${received + chunk.length}`));
        return;
      }
      received += chunk.length;
      lastProgress = Date.now();
      if (received === totalBytes) finish(undefined, now);
    };
    const writeMore = (): void => {
      while (written < totalBytes && !finished) {
        const end = Math.min(written + chunkBytes, totalBytes);
        const more = stream.write(data.subarray(written, end));
        written = end;
        if (!more) return;
      }
    };
    const onClose = (): void => finish(new Error(`the connection closed with ${received} of ${totalBytes} bytes echoed`));
    const watchdog = setInterval(() => {
      if (Date.now() - lastProgress > stallMs) {
        finish(new Error(`stalled: ${received} of ${totalBytes} bytes echoed (${written} written), nothing for ${stallMs} ms`));
      }
    }, WATCHDOG_MS);

    stream.on('data', onData);
    stream.on('drain', writeMore);
    stream.once('close', onClose);
    stream.once('error', finish);
    writeMore();
  });
}
