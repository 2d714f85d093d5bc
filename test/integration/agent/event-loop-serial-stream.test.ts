import { strict as assert } from 'node:assert';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { autoDetect } from '@serialport/bindings-cpp';
import type { BindingPortInterface } from '@serialport/bindings-interface';
import fc from 'fast-check';
import { EventLoopSerialStream } from '../../../agent/drivers/event-loop-serial-stream';
import { DeviceError } from '../../../src/errors';
import { haveSocat, PtyPair } from '../../helpers/pty';
import { waitFor } from '../../unit/agent/helpers';

const LINE = { baudRate: 115200, dataBits: 8, parity: 'none', stopBits: 1, rtscts: false, xon: false, xoff: false, lock: true } as const;

async function openPort(device: string): Promise<BindingPortInterface> {
  return autoDetect().open({ path: device, ...LINE });
}

async function openStream(device: string): Promise<EventLoopSerialStream> {
  return new EventLoopSerialStream(device, await openPort(device));
}

/** Collects what `stream` reads; `bytes()` is all of it so far. */
function collect(stream: EventLoopSerialStream): { chunks: Buffer[]; length(): number; bytes(): Buffer } {
  const chunks: Buffer[] = [];
  let n = 0;
  stream.on('data', (chunk: Buffer) => {
    chunks.push(chunk);
    n += chunk.length;
  });
  return { chunks, length: () => n, bytes: () => Buffer.concat(chunks) };
}

/** Writes `data` in `size`-byte writes honouring backpressure; resolves once every write's callback ran. */
function writeAll(stream: EventLoopSerialStream, data: Buffer, size: number): Promise<void> {
  return new Promise((resolve, reject) => {
    let offset = 0;
    let done = 0;
    const total = Math.ceil(data.length / size);
    const pump = (): void => {
      while (offset < data.length) {
        const ok = stream.write(data.subarray(offset, offset + size), (err) => {
          if (err) reject(err);
          else if (++done === total) resolve();
        });
        offset += size;
        if (!ok) {
          stream.once('drain', pump);
          return;
        }
      }
    };
    if (total === 0) resolve();
    else pump();
  });
}

/** The native poll events a port's poller delivers, counted (bindings-cpp's Poller emits them). */
function countPollEvents(port: BindingPortInterface): { count(): number } {
  const poller = (port as unknown as { poller: { emit(event: string, ...args: unknown[]): boolean } }).poller;
  const emit = poller.emit.bind(poller);
  let n = 0;
  poller.emit = (event: string, ...args: unknown[]): boolean => {
    if (event === 'readable' || event === 'writable') n += 1;
    return emit(event, ...args);
  };
  return { count: () => n };
}

describe('agent/drivers/event-loop-serial-stream on a socat pty pair', function () {
  this.timeout(60_000);
  let dir: string;
  let pair: PtyPair | undefined;
  const streams: EventLoopSerialStream[] = [];

  before(function () {
    if (!haveSocat()) {
      console.log('    skipped: socat is not installed (scripts/install-test-deps.sh installs it)');
      this.skip();
    }
  });

  beforeEach(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dm-elss-'));
    pair = await PtyPair.create(path.join(dir, 'ttyA'), path.join(dir, 'ttyB'));
  });

  afterEach(async () => {
    for (const s of streams.splice(0)) {
      s.on('error', () => undefined);
      await s.close().catch(() => undefined);
    }
    await pair?.remove();
    pair = undefined;
    fs.rmSync(dir, { recursive: true, force: true });
  });

  async function open(name: 'ttyA' | 'ttyB'): Promise<EventLoopSerialStream> {
    const s = await openStream(path.join(dir, name));
    streams.push(s);
    return s;
  }

  it('moves 1 MiB each way at once, in order, with every write called back', async () => {
    const a = await open('ttyA');
    const b = await open('ttyB');
    const atB = collect(b);
    const atA = collect(a);
    const toB = crypto.randomBytes(1 << 20);
    const toA = crypto.randomBytes(1 << 20);
    await Promise.all([writeAll(a, toB, 16 * 1024), writeAll(b, toA, 5000)]);
    await waitFor(() => atB.length() >= toB.length && atA.length() >= toA.length, 'both MiB across');
    assert.ok(atB.bytes().equals(toB), 'A → B unchanged');
    assert.ok(atA.bytes().equals(toA), 'B → A unchanged');
  });

  it('moves small messages both ways as they are written (command and answer)', async () => {
    const a = await open('ttyA');
    const b = await open('ttyB');
    b.on('data', (chunk: Buffer) => b.write(Buffer.from(chunk.toString('latin1').toUpperCase(), 'latin1')));
    const atA = collect(a);
    for (let i = 0; i < 20; i++) {
      const before = atA.length();
      a.write(`ping ${i};`);
      await waitFor(() => atA.length() >= before + `ping ${i};`.length, `answer ${i}`);
    }
    assert.equal(atA.bytes().toString('latin1'), Array.from({ length: 20 }, (_, i) => `PING ${i};`).join(''));
  });

  it('calls a write back only once the kernel took its bytes: a stalled far end stalls the writer, and it resumes', async () => {
    const a = await open('ttyA');
    const b = await open('ttyB');
    b.pause();
    const data = crypto.randomBytes(1 << 20);
    let calledBack = 0;
    let accepted = true;
    for (let offset = 0; offset < data.length; offset += 8192) {
      accepted = a.write(data.subarray(offset, offset + 8192), () => {
        calledBack += 8192;
      }) && accepted;
    }
    assert.equal(accepted, false, 'write() asked to wait');
    await new Promise((r) => setTimeout(r, 300));
    const stalledAt = calledBack;
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(calledBack, stalledAt, 'nothing more went out while the far end did not read');
    assert.ok(stalledAt < data.length / 2, `only what the ptys buffer went out (${stalledAt} bytes)`);
    assert.ok(a.writableLength >= data.length - stalledAt - 8192, 'the rest waits in the stream');
    const drained = new Promise((resolve) => a.once('drain', resolve));
    const atB = collect(b);
    b.resume();
    await drained;
    await waitFor(() => atB.length() >= data.length, 'the 1 MiB at the far end');
    assert.equal(calledBack, data.length);
    assert.ok(atB.bytes().equals(data));
  });

  it('stops reading the fd while its reader is paused, so the far end is held back, and delivers it all on resume', async () => {
    const a = await open('ttyA');
    const b = await open('ttyB');
    a.pause();
    const data = crypto.randomBytes(1 << 20);
    const written = writeAll(b, data, 16 * 1024);
    let bDone = false;
    void written.then(() => {
      bDone = true;
    });
    await new Promise((r) => setTimeout(r, 400));
    assert.equal(bDone, false, 'the far end waits: the paused reader took only its buffer');
    assert.ok(a.readableLength <= 2 * 64 * 1024, `buffered while paused: ${a.readableLength}`);
    const atA = collect(a);
    a.resume();
    await written;
    await waitFor(() => atA.length() >= data.length, 'the 1 MiB at the reader');
    assert.ok(atA.bytes().equals(data));
  });

  it('does not spin after writes waited for room: no poll events while the line is idle', async () => {
    const a = await open('ttyA');
    const b = await open('ttyB');
    const atB = collect(b);
    b.pause();
    const data = crypto.randomBytes(256 * 1024);
    const written = writeAll(a, data, 64 * 1024);
    await new Promise((r) => setTimeout(r, 100));
    b.resume();
    await written;
    await waitFor(() => atB.length() >= data.length, 'the data across');
    const events = countPollEvents(a.port as BindingPortInterface);
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(events.count(), 0, 'an idle port is not woken');
    b.write('x');
    const atA = collect(a);
    await waitFor(() => atA.length() === 1, 'a byte read after the idle time');
    assert.ok(events.count() >= 1 && events.count() <= 3, `one byte, ${events.count()} wake-ups`);
  });

  it('closes with a DeviceError and no error event when the device goes away, a waiting write called back with it', async () => {
    const a = await open('ttyA');
    await open('ttyB');
    let errored = false;
    a.on('error', () => {
      errored = true;
    });
    const closed = new Promise<unknown>((resolve) => a.once('close', resolve));
    // A write that cannot go out: the far end is open but nobody reads it.
    const writeResult = new Promise<Error | null | undefined>((resolve) => a.write(crypto.randomBytes(1 << 20), resolve));
    await new Promise((r) => setTimeout(r, 100));
    await pair?.remove();
    const reason = await closed;
    assert.ok(reason instanceof DeviceError, `close reason ${String(reason)}`);
    assert.match(reason.message, /ttyA: the device is gone/);
    const writeErr = await writeResult;
    assert.ok(writeErr instanceof Error, 'the waiting write failed');
    assert.equal(errored, false);
    assert.equal(a.isOpen, false);
    await a.close();
  });

  it('notices the device going away while its reader is paused', async () => {
    const a = await open('ttyA');
    a.pause();
    const closed = new Promise<unknown>((resolve) => a.once('close', resolve));
    await pair?.remove();
    assert.ok((await closed) instanceof DeviceError);
  });

  it('close() releases the port and its lock for the next opener', async () => {
    const a = await open('ttyA');
    await assert.rejects(openPort(path.join(dir, 'ttyA')), /Cannot lock port/);
    await a.close();
    assert.equal(a.port, undefined);
    assert.equal(a.destroyed, true);
    await a.close();
    const again = await open('ttyA');
    assert.equal(again.isOpen, true);
  });

  it('waits out a reopen: detach() lets the write in progress finish, writes made meanwhile go out in order on the new port', async () => {
    const a = await open('ttyA');
    const b = await open('ttyB');
    const atB = collect(b);
    const first = crypto.randomBytes(200 * 1024);
    const second = crypto.randomBytes(100 * 1024);
    const calledBack: string[] = [];
    b.pause();
    a.write(first, () => calledBack.push('first'));
    const detaching = a.detach();
    a.write(second, () => calledBack.push('second'));
    await new Promise((r) => setTimeout(r, 100));
    assert.deepEqual(calledBack, [], 'the first write is still going out');
    b.resume();
    const old = await detaching;
    assert.deepEqual(calledBack, ['first'], 'detached once the first write was all in the kernel, before the second started');
    assert.ok(old?.isOpen, 'the old port is handed back open');
    // A pty's tcdrain does not wait for the far end to read: closing it earlier would drop what is in flight.
    await waitFor(() => atB.length() >= first.length, 'the first write across');
    await old.close();
    await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual(calledBack, ['first'], 'nothing is written while detached');
    a.attach(await openPort(path.join(dir, 'ttyA')));
    await waitFor(() => atB.length() >= first.length + second.length, 'both writes across');
    assert.deepEqual(calledBack, ['first', 'second']);
    assert.ok(atB.bytes().equals(Buffer.concat([first, second])));
  });

  it('carries any sequence of writes unchanged while its far reader keeps pausing (property)', async () => {
    const a = await open('ttyA');
    const b = await open('ttyB');
    const atB = collect(b);
    let expected = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.uint8Array({ minLength: 1, maxLength: 20_000 }), { minLength: 1, maxLength: 12 }),
        fc.array(fc.integer({ min: 0, max: 3 }), { minLength: 1, maxLength: 5 }),
        async (chunks, pauses) => {
          const from = expected;
          const want = Buffer.concat(chunks.map((c) => Buffer.from(c)));
          expected += want.length;
          let p = 0;
          let resumer: NodeJS.Timeout | undefined;
          const pauser = setInterval(() => {
            b.pause();
            clearTimeout(resumer);
            resumer = setTimeout(() => b.resume(), pauses[p++ % pauses.length]);
          }, 5);
          try {
            for (const c of chunks) a.write(Buffer.from(c));
            await waitFor(() => atB.length() >= expected, `${want.length} bytes across`);
          } finally {
            clearInterval(pauser);
            clearTimeout(resumer);
            b.resume();
          }
          assert.ok(atB.bytes().subarray(from).equals(want));
        },
      ),
      { numRuns: 25 },
    );
  });
});
