import * as assert from 'node:assert/strict';
import { type ChildProcess, execFileSync } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { autoDetect } from '@serialport/bindings-cpp';
import type { DeviceHandle } from '../../../agent/drivers/device-driver';
import { SerialDriver } from '../../../agent/drivers/serial-driver';
import { readTermios } from '../../../agent/drivers/termios-readback';
import { DeviceError } from '../../../src/errors';
import { CommandOp } from '../../../src/socket-plane/device-command';
import { ModemLine } from '../../../src/socket-plane/device-event';
import type { SerialConfig } from '../../../src/proto/types';
import { lineConfig, waitFor } from '../../unit/agent/helpers';
import { echo, startSocat, stopSocat } from './pty';

function stty(device: string): string {
  return execFileSync('stty', ['-F', device, '-a'], { encoding: 'utf8' });
}

/** stty flags as words: `cstopb` set, `-cstopb` cleared. */
function hasFlag(settings: string, flag: string): boolean {
  return settings.split(/[\s;]+/).includes(flag);
}

describe('agent/drivers/serial-driver on a socat pty pair', function () {
  this.timeout(60_000);
  let dir: string;
  let socat: ChildProcess | undefined;
  let device: DeviceHandle | undefined;
  let peer: DeviceHandle | undefined;

  beforeEach(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dm-serial-'));
    socat = await startSocat(path.join(dir, 'ttyA'), path.join(dir, 'ttyB'));
  });

  afterEach(async () => {
    await device?.close();
    await peer?.close();
    device = peer = undefined;
    await stopSocat(socat);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('opens with the lock, which a second open then finds taken', async () => {
    const driver = new SerialDriver(autoDetect());
    device = await driver.open(path.join(dir, 'ttyA'), lineConfig(null));
    await assert.rejects(driver.open(path.join(dir, 'ttyA'), lineConfig(null)), /cannot open .*ttyA: .*Cannot lock port/);
  });

  it('keeps a busy full-duplex line flowing while the reader pauses (bindings-cpp poller workaround)', async () => {
    const driver = new SerialDriver(autoDetect());
    device = await driver.open(path.join(dir, 'ttyA'), lineConfig(null));
    peer = await driver.open(path.join(dir, 'ttyB'), lineConfig(null));
    echo(peer);
    const data = crypto.randomBytes(2 << 20);
    const stream = device.stream;
    const got: Buffer[] = [];
    let n = 0;
    // A reader that keeps stopping makes reads and writes wait on the fd at the same time.
    stream.on('data', (chunk: Buffer) => {
      got.push(chunk);
      n += chunk.length;
      stream.pause();
      setTimeout(() => stream.resume(), 2);
    });
    let offset = 0;
    const pump = (): void => {
      while (offset < data.length) {
        const ok = stream.write(data.subarray(offset, offset + 16 * 1024));
        offset += 16 * 1024;
        if (!ok) {
          stream.once('drain', pump);
          return;
        }
      }
    };
    pump();
    await waitFor(() => n >= data.length, `${data.length} bytes back`, 15_000).catch(() => {
      assert.fail(`the line stalled after ${n} of ${data.length} bytes`);
    });
    assert.ok(Buffer.concat(got).equals(data));
  });

  it('applies stop bits, flow control and baud rate while data keeps flowing through the same stream', async () => {
    const link = path.join(dir, 'ttyA');
    const driver = new SerialDriver(autoDetect());
    const base: SerialConfig = { baudRate: 9600, dataBits: 8, parity: 'PARITY_NONE', stopBits: 'STOP_BITS_ONE', flowControl: 'FLOW_CONTROL_NONE' };
    device = await driver.open(link, lineConfig(base));
    peer = await driver.open(path.join(dir, 'ttyB'), lineConfig(null));
    const echoed = echo(peer);
    const stream = device.stream;
    const got: Buffer[] = [];
    stream.on('data', (chunk: Buffer) => got.push(chunk));
    const sent: Buffer[] = [];
    // The far end must get every byte once, in order. Bytes coming back from it while the port is
    // closed for a reopen are dropped by the tty, as a UART drops them, so the device side checks
    // each round trip made with the port open.
    const roundTrip = async (text: string): Promise<void> => {
      const b = Buffer.from(text);
      sent.push(b);
      const from = Buffer.concat(got).length;
      stream.write(b);
      const want = Buffer.concat(sent);
      await waitFor(() => Buffer.concat(echoed).length >= want.length, `"${text.trim()}" at the far end`);
      assert.ok(Buffer.concat(echoed).equals(want), 'the far end got every byte once, in order');
      // The echo of bytes written just before a reopen may come back first: wait for ours at the end.
      await waitFor(() => {
        const all = Buffer.concat(got);
        return all.length >= from + b.length && all.subarray(all.length - b.length).equals(b);
      }, `"${text.trim()}" echoed back`);
    };

    let s = stty(link);
    assert.match(s, /speed 9600 baud/);
    assert.ok(hasFlag(s, '-cstopb') && hasFlag(s, '-crtscts'), s);
    await roundTrip('one stop bit, no flow control\n');

    // Written just before the update: waits out the reopen, goes out after it.
    const during = Buffer.from('written while reopening\n');
    sent.push(during);
    stream.write(during);
    await device.update(lineConfig({ ...base, stopBits: 'STOP_BITS_TWO', flowControl: 'FLOW_CONTROL_RTSCTS' }));
    assert.equal(device.stream, stream);
    s = stty(link);
    assert.match(s, /speed 9600 baud/);
    assert.ok(hasFlag(s, 'cstopb') && hasFlag(s, 'crtscts'), s);
    await roundTrip('two stop bits, RTS/CTS\n');

    await device.update(lineConfig({ ...base, baudRate: 57600, stopBits: 'STOP_BITS_TWO', flowControl: 'FLOW_CONTROL_RTSCTS' }));
    s = stty(link);
    assert.match(s, /speed 57600 baud/);
    assert.ok(hasFlag(s, 'cstopb') && hasFlag(s, 'crtscts'), s);
    await roundTrip('57600 baud\n');

    assert.ok(Buffer.concat(echoed).equals(Buffer.concat(sent)), 'the far end got every byte once, in order');
  });

  it('reads the line settings back from the kernel (TCGETS2), and reports what the pty refused', async () => {
    const driver = new SerialDriver(autoDetect(), { readBack: readTermios });
    const config: SerialConfig = { baudRate: 9600, dataBits: 7, parity: 'PARITY_EVEN', stopBits: 'STOP_BITS_TWO', flowControl: 'FLOW_CONTROL_RTSCTS' };
    device = await driver.open(path.join(dir, 'ttyA'), lineConfig(config));
    device.onEvent(() => undefined);
    const read = await device.configuration();
    // A pty keeps speed, stop bits and RTS/CTS but forces 8 data bits and no parity: the read-back says so.
    assert.deepEqual(
      { baudRate: read.baudRate, stopBits: read.stopBits, flowControl: read.flowControl, dataBits: read.dataBits, parity: read.parity, source: read.source },
      { baudRate: '9600', stopBits: '2', flowControl: 'rtscts', dataBits: '8', parity: 'none', source: 'device' },
    );
    await device.update(lineConfig({ ...config, baudRate: 57600 }));
    assert.equal((await device.configuration()).baudRate, '57600');
    await waitFor(async () => (await device?.configuration())?.modemLines !== undefined, 'the modem-line poll to give up on the pty');
    assert.match((await device.configuration()).modemLines ?? '', /^unreadable: /);
  });

  it('refuses to read line settings from what is not a tty, or is not there, with a DeviceError', async () => {
    await assert.rejects(readTermios('/dev/null'), (err: unknown) => err instanceof DeviceError && /\/dev\/null: .*TCGETS2 failed: ENOTTY/.test(err.message));
    await assert.rejects(readTermios(path.join(dir, 'no-such-tty')), (err: unknown) => err instanceof DeviceError && /ENOENT/.test(err.message));
  });

  it('keeps DTR, RTS and BREAK as virtual line state on a pty, which refuses modem-control ioctls', async () => {
    const driver = new SerialDriver(autoDetect(), { readBack: readTermios });
    device = await driver.open(path.join(dir, 'ttyA'), lineConfig({ baudRate: 9600, dataBits: 8, parity: 'PARITY_NONE', stopBits: 'STOP_BITS_ONE', flowControl: 'FLOW_CONTROL_NONE', dtr: false }));
    const reply = await device.execute({ op: CommandOp.SerialSetLine, target: 'rts', value: 0, data: Buffer.alloc(0) });
    assert.deepEqual(reply, { value: 0, data: Buffer.from('virtual') });
    await device.execute({ op: CommandOp.SerialSetLine, target: 'brk', value: 1, data: Buffer.alloc(0) });
    const lines = await device.execute({ op: CommandOp.SerialGetLines, target: '', value: 0, data: Buffer.alloc(0) });
    assert.deepEqual(lines, { value: ModemLine.dcd, data: Buffer.from('virtual') }, 'a null modem: CTS follows RTS (off), DSR follows DTR (off), carrier on');
    const configuration = await device.configuration();
    assert.deepEqual([configuration.dtr, configuration.rts], ['false', 'false']);
    assert.match(configuration.lineControl ?? '', /^virtual/);
  });
});
