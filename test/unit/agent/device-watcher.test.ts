import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { setImmediate as nextTurn } from 'node:timers/promises';
import type { DeviceKind } from '../../../src/proto/types';
import type { DiscoveredDevice } from '../../../agent/drivers/device-driver';
import { DeviceWatcher, type DeviceWatcherOptions, type WatchedDevice } from '../../../agent/device-watcher';
import { haveSocat, PtyPair } from '../../helpers/pty';
import { recordingLogger, testLogger, waitFor } from './helpers';

/** Long enough never to fire during a test: what is seen then was seen through inotify. */
const NO_RESCAN = 3_600_000;

/** The kernel's inotify watches of this process, from the fdinfo of its inotify descriptor(s). */
function inotifyWatches(): number {
  let count = 0;
  for (const fd of fs.readdirSync('/proc/self/fd')) {
    let target = '';
    try {
      target = fs.readlinkSync(`/proc/self/fd/${fd}`);
    } catch {
      continue; // the descriptor readdir itself used
    }
    if (target !== 'anon_inode:inotify') continue;
    count += fs.readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8').split('\n').filter((l) => l.startsWith('inotify wd:')).length;
  }
  return count;
}

/** A device as the watcher or a listing shows it. */
function device(p: string, kind: DeviceKind, deviceId: string, capabilities: string[], labels: Record<string, string> = {}): WatchedDevice {
  return { path: p, kind, deviceId, capabilities, labels };
}

function handles(): { fds: number; watches: number; resources: string } {
  const resources = process.getActiveResourcesInfo().filter((r) => r === 'FSEventWrap' || r === 'Timeout').sort().join(',');
  return { fds: fs.readdirSync('/proc/self/fd').length, watches: inotifyWatches(), resources };
}

describe('agent/device-watcher', () => {
  let dir: string;
  let watcher: DeviceWatcher | undefined;
  let events: string[];

  /** A watcher on `specs` (relative to the temp dir), recording `+name=id` and `-name=id`; without a rescan unless asked. */
  async function watch(specs: string[], options: Partial<DeviceWatcherOptions> = {}): Promise<DeviceWatcher> {
    const w = new DeviceWatcher({ watches: specs.map((s) => s.replace('DIR', dir)), log: testLogger(), rescanMs: NO_RESCAN, ...options });
    const id = (d: WatchedDevice): string => (d.deviceId === d.path ? 'path' : d.deviceId);
    w.on('added', (d) => events.push(`+${path.relative(dir, d.path)}=${id(d)}`));
    w.on('removed', (d) => events.push(`-${path.relative(dir, d.path)}=${id(d)}`));
    watcher = w;
    await w.start();
    return w;
  }

  const file = (name: string): string => path.join(dir, name);

  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dm-watch-'));
    events = [];
  });

  afterEach(() => {
    watcher?.stop();
    watcher = undefined;
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('reports devices through inotify alone; symlinks count, dangling ones and directories do not', async () => {
    fs.writeFileSync(file('ttyA'), '');
    fs.writeFileSync(file('other'), '');
    fs.mkdirSync(file('ttyDir'));
    fs.symlinkSync(file('target'), file('ttyDangling'));
    const w = await watch(['DIR/tty*']);
    assert.deepEqual(events, ['+ttyA=path']);
    assert.deepEqual(w.devices().get(file('ttyA')), device(file('ttyA'), 'DEVICE_KIND_SERIAL', file('ttyA'), ['serial']));

    fs.symlinkSync(file('ttyA'), file('ttyLink'));
    await waitFor(() => events.length === 2, 'the symlink to be added');
    assert.equal(events[1], '+ttyLink=path');

    fs.writeFileSync(file('target'), '');
    await waitFor(() => events.length === 3, 'the dangling link to count once its target exists');
    assert.equal(events[2], '+ttyDangling=path');

    fs.rmSync(file('ttyA'));
    await waitFor(() => events.length === 5, 'the file and the now dangling link to be removed');
    assert.deepEqual(events.slice(3).sort(), ['-ttyA=path', '-ttyLink=path']);
    assert.deepEqual([...w.devices().keys()], [file('ttyDangling')]);
  });

  it('coalesces a burst of 50 files into a few scans', async () => {
    let listings = 0;
    // Files made a loop turn apart, each its own event; a debounce far longer than the burst takes.
    const w = await watch(['DIR/tty*'], { list: async () => ((listings += 1), []), debounceMs: 500 });
    assert.equal(listings, 0, 'an empty directory needs no listing');
    for (let i = 0; i < 50; i += 1) {
      fs.writeFileSync(file(`tty${i}`), '');
      await nextTurn();
    }
    await waitFor(() => w.devices().size === 50, 'the 50 devices');
    assert.ok(listings <= 3, `50 new files took ${listings} scans`);
    for (let i = 0; i < 50; i += 1) fs.rmSync(file(`tty${i}`));
    await waitFor(() => w.devices().size === 0, 'the 50 devices to go');
  });

  it('identifies devices from the listing of their kind, by path or real path', async () => {
    fs.writeFileSync(file('real0'), '');
    fs.symlinkSync(file('real0'), file('ttyUSB0'));
    fs.writeFileSync(file('hidraw0'), '');
    const asked: DeviceKind[] = [];
    const listing: DiscoveredDevice[] = [
      device(fs.realpathSync(file('real0')), 'DEVICE_KIND_SERIAL', 'usb-0403:6001:A', ['serial', 'usb'], { manufacturer: 'FTDI' }),
      { path: file('ttyUSB9'), kind: 'DEVICE_KIND_SERIAL', capabilities: ['serial', 'rs485'], labels: { driver: 'ftdi_sio' } },
    ];
    const list = async (kind: DeviceKind): Promise<DiscoveredDevice[]> => {
      asked.push(kind);
      return kind === 'DEVICE_KIND_SERIAL' ? listing : [];
    };
    const w = await watch(['DIR/ttyUSB?', 'DIR/hidraw*'], { list });
    assert.deepEqual(asked.sort(), ['DEVICE_KIND_HID', 'DEVICE_KIND_SERIAL']);
    assert.deepEqual(
      w.devices().get(file('ttyUSB0')),
      device(file('ttyUSB0'), 'DEVICE_KIND_SERIAL', 'usb-0403:6001:A', ['serial', 'usb'], { manufacturer: 'FTDI' }),
    );
    assert.deepEqual(w.devices().get(file('hidraw0')), device(file('hidraw0'), 'DEVICE_KIND_HID', file('hidraw0'), ['hid']));

    fs.writeFileSync(file('ttyUSB9'), '');
    await waitFor(() => w.devices().has(file('ttyUSB9')), 'ttyUSB9');
    assert.deepEqual(
      w.devices().get(file('ttyUSB9')),
      device(file('ttyUSB9'), 'DEVICE_KIND_SERIAL', file('ttyUSB9'), ['serial', 'rs485'], { driver: 'ftdi_sio' }),
      'a listed device without an id goes by its path',
    );
    assert.deepEqual(asked.slice(2), ['DEVICE_KIND_SERIAL'], 'only the kind with a new path is listed');
  });

  it('reports a device that moved to another path as removed there, then added here, with the same id', async () => {
    fs.writeFileSync(file('ttyUSB0'), '');
    let listing: DiscoveredDevice[] = [device(file('ttyUSB0'), 'DEVICE_KIND_SERIAL', 'usb-X', ['serial'])];
    await watch(['DIR/ttyUSB*'], { list: async () => listing });
    listing = [{ ...listing[0], path: file('ttyUSB1') }];
    fs.renameSync(file('ttyUSB0'), file('ttyUSB1'));
    await waitFor(() => events.length === 3, 'the move');
    assert.deepEqual(events, ['+ttyUSB0=usb-X', '-ttyUSB0=usb-X', '+ttyUSB1=usb-X']);
  });

  it('reports another device at the same path as removed, then added with its own id', async () => {
    fs.writeFileSync(file('ttyUSB0'), '');
    let listing: DiscoveredDevice[] = [device(file('ttyUSB0'), 'DEVICE_KIND_SERIAL', 'usb-A', ['serial'])];
    await watch(['DIR/ttyUSB*'], { list: async () => listing });
    listing = [{ ...listing[0], deviceId: 'usb-B' }];
    // Made before the old one goes, so that it cannot get the old inode back.
    fs.writeFileSync(file('next'), '');
    fs.renameSync(file('next'), file('ttyUSB0'));
    await waitFor(() => events.length === 3, 'the replacement');
    assert.deepEqual(events, ['+ttyUSB0=usb-A', '-ttyUSB0=usb-A', '+ttyUSB0=usb-B']);
  });

  it('identifies devices by path when the listing fails, warning once', async () => {
    const { log, records } = recordingLogger();
    let calls = 0;
    const list = (): Promise<DiscoveredDevice[]> => {
      calls += 1;
      return Promise.reject(Object.assign(new Error('spawn udevadm ENOENT'), { code: 'ENOENT' }));
    };
    fs.writeFileSync(file('ttyA'), '');
    const w = await watch(['DIR/tty*'], { list, log });
    fs.writeFileSync(file('ttyB'), '');
    await waitFor(() => w.devices().size === 2, 'the second device');
    assert.equal(calls, 2);
    const warnings = records.filter((r) => String(r.msg).includes('cannot list serial devices'));
    assert.equal(warnings.length, 1);
    assert.match(String(warnings[0]?.error), /ENOENT/);
    assert.deepEqual([...w.devices().values()].map((d) => d.deviceId).sort(), [file('ttyA'), file('ttyB')]);
  });

  it('counts directories as devices for sensors, whose IIO devices are sysfs directories (symlinks to them, as in /sys/bus/iio/devices)', async () => {
    fs.mkdirSync(file('real0'));
    fs.symlinkSync(file('real0'), file('iio:device0'));
    fs.mkdirSync(file('ttyDir'));
    const w = await watch(['sensor:DIR/iio:device*', 'DIR/tty*']);
    assert.deepEqual([...w.devices().keys()], [file('iio:device0')]);
    assert.equal(w.devices().get(file('iio:device0'))?.kind, 'DEVICE_KIND_SENSOR');
    fs.mkdirSync(file('real1'));
    fs.symlinkSync(file('real1'), file('iio:device1'));
    await waitFor(() => w.devices().has(file('iio:device1')), 'the second IIO device through inotify');
  });

  it('watches a directory created after start, and again after it is removed and made anew', async () => {
    const sub = file('later/deeper');
    const w = await watch(['DIR/later/deeper/tty*']);
    assert.equal(w.devices().size, 0);
    fs.mkdirSync(sub, { recursive: true });
    fs.writeFileSync(path.join(sub, 'ttyX'), '');
    await waitFor(() => w.devices().has(path.join(sub, 'ttyX')), 'the device in the new directory');
    fs.writeFileSync(path.join(sub, 'ttyY'), '');
    await waitFor(() => w.devices().size === 2, 'a second device there, through the directory\'s own watch');

    fs.rmSync(file('later'), { recursive: true });
    await waitFor(() => w.devices().size === 0, 'the devices of the removed directory to go');
    fs.mkdirSync(sub, { recursive: true });
    fs.writeFileSync(path.join(sub, 'ttyZ'), '');
    await waitFor(() => w.devices().has(path.join(sub, 'ttyZ')), 'the device in the directory made anew');
    assert.deepEqual(events.map((e) => e.replace('later/deeper/', '')), ['+ttyX=path', '+ttyY=path', '-ttyX=path', '-ttyY=path', '+ttyZ=path']);
  });

  it('watches anew a watched directory removed and made again between two scans', async () => {
    fs.mkdirSync(file('sub'));
    fs.writeFileSync(file('sub/ttyA'), '');
    const w = await watch(['DIR/sub/tty*']);
    fs.rmSync(file('sub'), { recursive: true });
    fs.mkdirSync(file('sub'));
    fs.writeFileSync(file('sub/ttyB'), '');
    await waitFor(() => events.length === 3, 'the swap');
    assert.deepEqual(events, ['+sub/ttyA=path', '-sub/ttyA=path', '+sub/ttyB=path']);
    fs.writeFileSync(file('sub/ttyC'), '');
    await waitFor(() => w.devices().has(file('sub/ttyC')), 'a device in the directory made again');
  });

  it('follows a watched directory reached through a symlink that is re-pointed', async () => {
    fs.mkdirSync(file('a'));
    fs.mkdirSync(file('b'));
    fs.writeFileSync(file('a/ttyA'), '');
    fs.symlinkSync(file('a'), file('current'));
    // The second spec watches DIR itself, where the link is re-pointed.
    const w = await watch(['DIR/current/tty*', 'DIR/unused*']);
    fs.symlinkSync(file('b'), file('next'));
    fs.renameSync(file('next'), file('current'));
    await waitFor(() => events.length === 2, 'the device behind the old link to go');
    fs.writeFileSync(file('b/ttyB'), '');
    await waitFor(() => w.devices().has(file('current/ttyB')), 'a device in the directory the link points to now');
    assert.deepEqual(events, ['+current/ttyA=path', '-current/ttyA=path', '+current/ttyB=path']);
  });

  it('scans again right after a scan during which something changed', async () => {
    let calls = 0;
    let release: (devices: DiscoveredDevice[]) => void = () => undefined;
    const list = (): Promise<DiscoveredDevice[]> => {
      calls += 1;
      return calls === 1 ? new Promise((r) => (release = r)) : Promise.resolve([]);
    };
    const w = await watch(['DIR/tty*'], { list });
    fs.writeFileSync(file('ttyA'), '');
    await waitFor(() => calls === 1, 'the first scan to ask for the listing');
    fs.writeFileSync(file('ttyB'), '');
    // Held far longer than the debounce, so that ttyB's scan is asked for while this one runs.
    await new Promise((r) => setTimeout(r, 300));
    release([]);
    await waitFor(() => w.devices().has(file('ttyB')), 'ttyB');
    assert.deepEqual(events, ['+ttyA=path', '+ttyB=path']);
    assert.equal(calls, 2);
  });

  it('finds through the safety rescan what inotify cannot see', async () => {
    fs.mkdirSync(file('a'));
    fs.mkdirSync(file('b'));
    fs.writeFileSync(file('a/ttyA'), '');
    fs.writeFileSync(file('b/ttyB'), '');
    fs.symlinkSync(file('a'), file('current'));
    const w = await watch(['DIR/current/tty*'], { rescanMs: 100 });
    // Re-pointing the link changes no watched directory: only the rescan notices.
    fs.symlinkSync(file('b'), file('next'));
    fs.renameSync(file('next'), file('current'));
    await waitFor(() => w.devices().has(file('current/ttyB')), 'the device behind the re-pointed link');
    assert.deepEqual(events, ['+current/ttyA=path', '-current/ttyA=path', '+current/ttyB=path']);
  });

  it('keeps devices() exactly what is on disk through bursts of churn', async () => {
    const mirror = new Set<string>();
    const wrong: string[] = [];
    // A listing as slow as udevadm can be, so that changes land while a scan runs.
    const list = (): Promise<DiscoveredDevice[]> => new Promise((r) => setTimeout(() => r([]), 30));
    const w = new DeviceWatcher({ watches: [path.join(dir, 'dev*')], log: testLogger(), rescanMs: NO_RESCAN, list });
    watcher = w;
    w.on('added', (d) => {
      if (mirror.has(d.path)) wrong.push(`${d.path} added twice`);
      mirror.add(d.path);
    });
    w.on('removed', (d) => {
      if (!mirror.delete(d.path)) wrong.push(`${d.path} removed while absent`);
    });
    await w.start();
    let next = 0;
    const present: string[] = [];
    const create = async (n: number): Promise<void> => {
      for (let i = 0; i < n; i += 1) {
        const p = file(`dev${next++}`);
        fs.writeFileSync(p, '');
        present.push(p);
        if (i % 20 === 0) await nextTurn();
      }
    };
    const remove = async (n: number): Promise<void> => {
      for (let i = 0; i < n; i += 1) {
        fs.rmSync(present.splice((i * 7) % present.length, 1)[0] as string);
        if (i % 20 === 0) await nextTurn();
      }
    };
    for (let round = 0; round < 4; round += 1) {
      await create(200);
      await remove(150);
      await create(50);
      await new Promise((r) => setTimeout(r, round * 30));
      await remove(60);
    }
    const expected = fs.readdirSync(dir).map((n) => file(n)).sort();
    assert.equal(expected.length, present.length);
    await waitFor(() => [...w.devices().keys()].sort().join() === expected.join(), 'devices() to settle');
    assert.deepEqual(wrong, []);
    assert.deepEqual([...mirror].sort(), expected, 'the events add up to devices()');
  });

  it('closes every watch and timer on stop', async () => {
    // libuv keeps one inotify descriptor for good once a first watch needs it.
    const fsEvents = (): number => process.getActiveResourcesInfo().filter((r) => r === 'FSEventWrap').length;
    const idle = fsEvents();
    const first = fs.watch(dir);
    assert.equal(fsEvents(), idle + 1);
    first.close();
    await waitFor(() => fsEvents() === idle, 'the first watch to be released');
    const before = handles();
    const w = await watch(['DIR/tty*', 'DIR/sub/tty*', 'DIR/missing/tty*', 'serial:DIR/sub/usb*'], { rescanMs: 50 });
    fs.mkdirSync(file('sub'));
    fs.writeFileSync(file('sub/ttyA'), '');
    await waitFor(() => w.devices().size === 1, 'a device');
    const during = handles();
    assert.equal(during.watches - before.watches, 2, 'one watch on DIR (watched and ancestor of missing/) and one on sub/');
    w.stop();
    watcher = undefined;
    // Handles leave the loop's list in its close phase, after stop() returned.
    await waitFor(() => JSON.stringify(handles()) === JSON.stringify(before), 'the handles to be released', 5000).catch(() => undefined);
    assert.deepEqual(handles(), before);
  });

  it('follows a socat pty appearing and going away', async function () {
    if (!haveSocat()) {
      console.log('skipped: socat is not installed');
      this.skip();
    }
    const w = await watch(['DIR/ttyV*']);
    const pty = await PtyPair.create(file('ttyV0'), file('peer0'));
    try {
      await waitFor(() => w.devices().has(file('ttyV0')), 'the pty to be added');
      assert.equal(w.devices().get(file('ttyV0'))?.kind, 'DEVICE_KIND_SERIAL');
    } finally {
      await pty.remove();
    }
    await waitFor(() => w.devices().size === 0, 'the pty to be removed');
    assert.deepEqual(events, ['+ttyV0=path', '-ttyV0=path']);
  });
});
