import { strict as assert } from 'node:assert';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as v8 from 'node:v8';
import * as vm from 'node:vm';
import { PacketStatus } from '../../../src/pty/packet-mode';
import { PtyMaster, type PtyMasterSink } from '../../../sidecar/pty-master';
import { waitUntil } from './helpers';

/** Everything a master hands its sink, for the test to wait on. */
class RecordingSink implements PtyMasterSink {
  opens = 0;
  closes = 0;
  readonly data: Buffer[] = [];
  readonly statuses: number[] = [];
  constructor(private readonly master: () => PtyMaster) {}
  appOpened(): void {
    this.opens++;
    this.master().resume();
  }
  packet(status: number, data: Buffer): boolean {
    if (status === PacketStatus.data) this.data.push(Buffer.from(data));
    else this.statuses.push(status);
    return true;
  }
  drained(): void {}
  appClosed(): void {
    this.closes++;
  }
  text(): string {
    return Buffer.concat(this.data).toString('latin1');
  }
}

/** The app's end: the slave opened as a program opens a serial port (blocking reads, in the threadpool). */
function openSlave(path: string): number {
  return fs.openSync(path, fs.constants.O_RDWR | fs.constants.O_NOCTTY);
}

function readSlave(fd: number): Promise<{ text: string } | { error: string }> {
  const buf = Buffer.alloc(256);
  return new Promise((resolve) => fs.read(fd, buf, 0, buf.length, null, (err, n) => resolve(err ? { error: err.code ?? err.message } : n === 0 ? { error: 'EOF' } : { text: buf.toString('latin1', 0, n) })));
}

const collectGarbage = (): (() => void) => {
  v8.setFlagsFromString('--expose-gc');
  return vm.runInNewContext('gc') as () => void;
};

async function started(): Promise<{ master: PtyMaster; sink: RecordingSink }> {
  const master = new PtyMaster();
  const sink = new RecordingSink(() => master);
  master.start(sink);
  return { master, sink };
}

async function roundTrip(master: PtyMaster, sink: RecordingSink, tag: string): Promise<void> {
  const slave = openSlave(master.slavePath);
  try {
    await waitUntil(() => master.isAppOpen, `${tag}: the app seen opening the port`);
    fs.writeSync(slave, `${tag}-up`);
    await waitUntil(() => sink.text().endsWith(`${tag}-up`), `${tag}: the app's bytes read off the master`);
    const reading = readSlave(slave);
    master.write(Buffer.from(`${tag}-down\n`));
    assert.deepEqual(await reading, { text: `${tag}-down\n` });
  } finally {
    fs.closeSync(slave);
  }
  await waitUntil(() => !master.isAppOpen, `${tag}: the app seen closing the port`);
}

describe('sidecar: pty master (packet mode, polled on the event loop)', function () {
  this.timeout(60_000);
  const masters: PtyMaster[] = [];
  const make = async (): Promise<{ master: PtyMaster; sink: RecordingSink }> => {
    const made = await started();
    masters.push(made.master);
    return made;
  };

  after(() => {
    for (const m of masters) m.close();
  });

  it('carries the app’s bytes and the device’s, and sees the app open and close the port', async () => {
    const { master, sink } = await make();
    assert.match(master.slavePath, /^\/dev\/pts\/\d+$/);
    await roundTrip(master, sink, 'a');
    assert.deepEqual([sink.opens, sink.closes], [1, 1]);
    assert.ok(master.bytesRead >= 4 && master.bytesWritten >= 7);
  });

  it('a flush of the app’s input arrives as a flushRead packet', async () => {
    const { master, sink } = await make();
    // tcflush from python's termios, as pyserial's reset_input_buffer does it (spawned, not spawnSync: the loop must run meanwhile).
    const py = spawn('/usr/bin/python3', ['-c', `import os,termios,time;fd=os.open(${JSON.stringify(master.slavePath)},os.O_RDWR|os.O_NOCTTY);time.sleep(0.3);termios.tcflush(fd,termios.TCIFLUSH);time.sleep(0.3);os.close(fd)`]);
    const exited = new Promise<number | null>((resolve) => py.once('exit', resolve));
    await waitUntil(() => sink.statuses.some((s) => (s & PacketStatus.flushRead) !== 0), 'a TIOCPKT_FLUSHREAD packet');
    assert.equal(await exited, 0);
  });

  it('closing hangs the app up; the next master takes the same fd number and its stopped poller, and is heard after garbage collection', async () => {
    const gc = collectGarbage();
    const first = await make();
    const slave = openSlave(first.master.slavePath);
    await waitUntil(() => first.master.isAppOpen, 'the app seen opening the port');
    const reading = readSlave(slave);
    first.master.close();
    const answer = await reading;
    fs.closeSync(slave);
    assert.ok('error' in answer && ['EIO', 'EOF'].includes(answer.error), `the app reads EOF/EIO, not silence: ${JSON.stringify(answer)}`);
    const fd = first.master.fd;
    assert.equal(fs.readlinkSync(`/proc/self/fd/${fd}`), '/dev/null', 'the number is held by /dev/null, not freed for anyone');
    gc();
    await new Promise((r) => setImmediate(r));
    gc();
    const second = await make();
    assert.equal(second.master.fd, fd, 'the spare number is taken again');
    assert.equal(fs.readlinkSync(`/proc/self/fd/${fd}`), '/dev/ptmx');
    gc();
    await new Promise((r) => setTimeout(r, 50));
    gc();
    await roundTrip(second.master, second.sink, 'b');
    assert.equal(first.sink.data.length, 0, 'nothing reached the closed master’s sink');
  });

  it('replace() hangs the app up and goes on under the same fd with a new slave', async () => {
    const { master, sink } = await make();
    const fd = master.fd;
    const oldPath = master.slavePath;
    const slave = openSlave(oldPath);
    await waitUntil(() => master.isAppOpen, 'the app seen opening the port');
    const reading = readSlave(slave);
    master.replace();
    const answer = await reading;
    fs.closeSync(slave);
    assert.ok('error' in answer, `the app is hung up: ${JSON.stringify(answer)}`);
    assert.equal(master.fd, fd);
    assert.notEqual(master.slavePath, oldPath);
    await roundTrip(master, sink, 'c');
  });
});
