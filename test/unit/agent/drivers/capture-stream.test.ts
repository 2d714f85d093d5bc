import { strict as assert } from 'node:assert';
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { StreamDriver } from '../../../../agent/drivers/stream-driver';
import { DeviceError } from '../../../../src/errors';

const ANSWER_WITHIN_MS = 5000;

function openFds(): number {
  return fs.readdirSync('/proc/self/fd').length;
}

/** `work` answers within `ms`, or this rejects saying what did not. */
async function within<T>(ms: number, what: string, work: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what} did not answer within ${ms} ms`)), ms)));
  try {
    return await Promise.race([work, late]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * The capture stream reads on readiness (O_NONBLOCK + uv_poll), so a silent device holds no read
 * in libuv's threadpool: closing a stream releases its descriptor at once and leaves every worker
 * thread free for the agent's file-system calls.
 */
describe('agent/drivers/capture-stream', function () {
  this.timeout(60_000);
  let root: string;
  let fifo: string;
  let silentWriter: number | undefined;

  before(function () {
    if (spawnSync('mkfifo', ['--version'], { stdio: 'ignore' }).status !== 0) {
      console.log('skipped: mkfifo is not installed');
      this.skip();
    }
  });

  beforeEach(() => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'dm-capture-'));
    fifo = path.join(root, 'video0');
    execFileSync('mkfifo', [fifo]);
    // A writer that holds the FIFO open and never writes: a camera that went silent.
    silentWriter = fs.openSync(fifo, fs.constants.O_RDWR);
  });

  afterEach(() => {
    if (silentWriter !== undefined) fs.closeSync(silentWriter);
    silentWriter = undefined;
    fs.rmSync(root, { recursive: true, force: true });
  });

  it('opens and closes 32 streams on a silent FIFO; no descriptor stays open and file-system calls still answer', async () => {
    const driver = new StreamDriver({ kind: 'DEVICE_KIND_VIDEO', devRoot: root });
    const before = openFds();
    for (let i = 0; i < 32; i++) {
      const handle = await within(ANSWER_WITHIN_MS, `open #${i + 1}`, driver.open(fifo, { serial: null, settings: {} }));
      const closed = new Promise<void>((resolve) => handle.stream.once('close', resolve));
      handle.stream.resume();
      await new Promise((resolve) => setImmediate(resolve));
      await handle.close();
      await within(ANSWER_WITHIN_MS, `close #${i + 1}`, closed);
    }
    assert.equal(openFds(), before, 'every closed stream released its descriptor');
    // More calls at once than libuv has worker threads (4 by default): each needs a free one.
    const file = path.join(root, 'config.yaml');
    fs.writeFileSync(file, 'kind: Binding\n');
    const answers = await within(
      ANSWER_WITHIN_MS,
      'fs.promises calls after the closed streams',
      Promise.all([...Array(8).keys()].map(async () => [await fs.promises.readFile(file, 'utf8'), (await fs.promises.stat(root)).isDirectory()] as const)),
    );
    for (const [text, isDir] of answers) {
      assert.equal(text, 'kind: Binding\n');
      assert.equal(isDir, true);
    }
  });

  it('delivers bytes written after a silence, and the writer closing ends the stream as the device gone', async () => {
    const driver = new StreamDriver({ kind: 'DEVICE_KIND_VIDEO', devRoot: root });
    const handle = await driver.open(fifo, { serial: null, settings: {} });
    const gone: string[] = [];
    handle.onEvent((e) => gone.push(e.data.toString()));
    const got: Buffer[] = [];
    handle.stream.on('data', (chunk: Buffer) => got.push(chunk));
    const closed = new Promise<void>((resolve) => handle.stream.once('close', resolve));
    await new Promise((resolve) => setTimeout(resolve, 200));
    assert.equal(got.length, 0, 'nothing was read from the silent FIFO');
    fs.writeSync(silentWriter as number, Buffer.from('frame-1'));
    await within(ANSWER_WITHIN_MS, 'the frame', new Promise<void>((resolve) => handle.stream.once('data', () => resolve())));
    fs.closeSync(silentWriter as number);
    silentWriter = undefined;
    await within(ANSWER_WITHIN_MS, 'the end of stream', closed);
    assert.equal(Buffer.concat(got).toString(), 'frame-1');
    assert.equal(gone.length, 1);
    assert.match(gone[0] ?? '', /video0: the device is gone \(end of stream\)/);
  });

  it('reads a node that cannot be polled (a regular file) to its end', async () => {
    const file = path.join(root, 'recorded');
    const data = Buffer.alloc(300_000, 7);
    fs.writeFileSync(file, data);
    const handle = await new StreamDriver({ kind: 'DEVICE_KIND_VIDEO', devRoot: root, readSize: 16 * 1024 }).open(file, { serial: null, settings: {} });
    const got: Buffer[] = [];
    handle.stream.on('data', (chunk: Buffer) => got.push(chunk));
    await within(ANSWER_WITHIN_MS, 'the end of the file', new Promise<void>((resolve) => handle.stream.once('close', resolve)));
    assert.ok(Buffer.concat(got).equals(data));
  });

  it('a node that cannot be opened is a DeviceError naming it', async () => {
    const driver = new StreamDriver({ kind: 'DEVICE_KIND_VIDEO', devRoot: root });
    await assert.rejects(driver.open(path.join(root, 'video9'), { serial: null, settings: {} }), (err: unknown) => err instanceof DeviceError && /cannot open .*video9: .*ENOENT/.test(err.message));
  });
});
