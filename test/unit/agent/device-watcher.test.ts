import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { PortInfo } from '@serialport/bindings-interface';
import { compileGlob, deviceIdOf, DeviceWatcher } from '../../../agent/device-watcher';
import { recordingLogger, testLogger, waitFor } from './helpers';

function usbPort(p: string): PortInfo {
  return { path: p, manufacturer: 'FTDI', serialNumber: 'A50285BI', pnpId: undefined, locationId: undefined, vendorId: '0403', productId: '6001' };
}

describe('agent/device-watcher', () => {
  describe('compileGlob', () => {
    it('matches * and ? in the last segment only', () => {
      const g = compileGlob('/dev/ttyUSB*');
      assert.equal(g.dir, '/dev');
      assert.ok(g.pattern.test('ttyUSB0'));
      assert.ok(g.pattern.test('ttyUSB'));
      assert.ok(!g.pattern.test('ttyACM0'));
      const q = compileGlob('/tmp/x/tty?.dev');
      assert.ok(q.pattern.test('ttyA.dev'));
      assert.ok(!q.pattern.test('ttyAB.dev'));
      assert.ok(!q.pattern.test('ttyAxdev'), 'a dot is literal');
    });

    it('refuses wildcards in directories', () => {
      assert.throws(() => compileGlob('/dev/*/ttyUSB0'), /wildcards are only allowed in the last path segment/);
    });
  });

  it('derives the device id from the USB identity when known, else the path', () => {
    assert.equal(deviceIdOf('/dev/ttyUSB0', usbPort('/dev/ttyUSB0')), 'usb-0403:6001:A50285BI');
    assert.equal(deviceIdOf('/dev/ttyS0', undefined), '/dev/ttyS0');
    assert.equal(deviceIdOf('/dev/ttyUSB0', { ...usbPort('/dev/ttyUSB0'), serialNumber: undefined }), '/dev/ttyUSB0');
  });

  describe('polling a directory', () => {
    let dir: string;
    let watcher: DeviceWatcher | undefined;

    beforeEach(() => {
      dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dm-watch-'));
    });

    afterEach(() => {
      watcher?.stop();
      watcher = undefined;
      fs.rmSync(dir, { recursive: true, force: true });
    });

    it('reports devices present at start, appearing and vanishing; symlinks count, dangling ones and directories do not', async () => {
      fs.writeFileSync(path.join(dir, 'ttyA'), '');
      fs.writeFileSync(path.join(dir, 'other'), '');
      fs.mkdirSync(path.join(dir, 'ttyDir'));
      fs.symlinkSync(path.join(dir, 'nowhere'), path.join(dir, 'ttyDangling'));
      const events: string[] = [];
      watcher = new DeviceWatcher({ globs: [path.join(dir, 'tty*')], log: testLogger(), intervalMs: 20 });
      watcher.on('added', (p: string, id: string) => events.push(`+${path.basename(p)}=${id === p ? 'path' : id}`));
      watcher.on('removed', (p: string) => events.push(`-${path.basename(p)}`));
      await watcher.start();
      assert.deepEqual(events, ['+ttyA=path']);

      fs.symlinkSync(path.join(dir, 'ttyA'), path.join(dir, 'ttyLink'));
      await waitFor(() => events.length === 2, 'the symlink to be added');
      assert.equal(events[1], '+ttyLink=path');

      fs.rmSync(path.join(dir, 'ttyA'));
      await waitFor(() => events.length === 4, 'the file and the now dangling link to be removed');
      assert.deepEqual(events.slice(2).sort(), ['-ttyA', '-ttyLink']);
      assert.deepEqual([...watcher.devices().keys()], []);
    });

    it('names devices by USB identity when the port list knows them', async () => {
      const target = path.join(dir, 'real0');
      fs.writeFileSync(target, '');
      fs.symlinkSync(target, path.join(dir, 'ttyUSB0'));
      const real = fs.realpathSync(target);
      watcher = new DeviceWatcher({ globs: [path.join(dir, 'ttyUSB?')], log: testLogger(), list: async () => [usbPort(real)] });
      await watcher.start();
      assert.deepEqual([...watcher.devices()], [[path.join(dir, 'ttyUSB0'), 'usb-0403:6001:A50285BI']]);
    });

    it('survives a port list that cannot run (udevadm missing), logging it once', async () => {
      const { log, records } = recordingLogger();
      let calls = 0;
      const list = (): Promise<PortInfo[]> => {
        calls += 1;
        return Promise.reject(Object.assign(new Error('spawn udevadm ENOENT'), { code: 'ENOENT' }));
      };
      fs.writeFileSync(path.join(dir, 'ttyA'), '');
      watcher = new DeviceWatcher({ globs: [path.join(dir, 'tty*')], log, list, intervalMs: 20 });
      await watcher.start();
      fs.writeFileSync(path.join(dir, 'ttyB'), '');
      await waitFor(() => watcher?.devices().size === 2, 'the second device');
      assert.equal(calls, 2);
      const warnings = records.filter((r) => String(r.msg).includes('cannot list USB identities'));
      assert.equal(warnings.length, 1);
      assert.match(String(warnings[0]?.error), /ENOENT/);
      assert.deepEqual([...watcher.devices().values()].sort(), [path.join(dir, 'ttyA'), path.join(dir, 'ttyB')]);
    });

    it('treats a watched directory that does not exist yet as empty', async () => {
      const sub = path.join(dir, 'later');
      watcher = new DeviceWatcher({ globs: [path.join(sub, 'tty*')], log: testLogger(), intervalMs: 20 });
      await watcher.start();
      assert.equal(watcher.devices().size, 0);
      fs.mkdirSync(sub);
      fs.writeFileSync(path.join(sub, 'ttyX'), '');
      await waitFor(() => watcher?.devices().size === 1, 'the device in the new directory');
    });
  });
});
