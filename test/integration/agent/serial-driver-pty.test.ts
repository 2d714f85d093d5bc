import * as assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { autoDetect } from '@serialport/bindings-cpp';
import type { DeviceHandle } from '../../../agent/drivers/device-driver';
import { SerialDriver } from '../../../agent/drivers/serial-driver';
import { waitFor } from '../../unit/agent/helpers';
import { echo, startSocat, stopSocat } from './pty';

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
    device = await driver.open(path.join(dir, 'ttyA'), null);
    await assert.rejects(driver.open(path.join(dir, 'ttyA'), null), /cannot open .*ttyA: .*Cannot lock port/);
  });

  it('keeps a busy full-duplex line flowing while the reader pauses (bindings-cpp poller workaround)', async () => {
    const driver = new SerialDriver(autoDetect());
    device = await driver.open(path.join(dir, 'ttyA'), null);
    peer = await driver.open(path.join(dir, 'ttyB'), null);
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
});
