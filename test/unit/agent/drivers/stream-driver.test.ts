import { strict as assert } from 'node:assert';
import { execFileSync, spawnSync } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import type { DeviceConfig, DeviceHandle } from '../../../../agent/drivers/device-driver';
import { StreamDriver } from '../../../../agent/drivers/stream-driver';
import type { StreamKind } from '../../../../agent/drivers/stream-format';
import { DeviceError, UnsupportedError, ValidationError } from '../../../../src/errors';
import { CommandOp } from '../../../../src/socket-plane/device-command';
import { type DeviceEvent, DeviceEventType } from '../../../../src/socket-plane/device-event';
import { waitFor } from '../helpers';

const READ_SIZE = 16 * 1024;

function config(settings: Record<string, string> = {}): DeviceConfig {
  return { serial: null, settings };
}

function write(file: string, text: string): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, text);
}

/** A /proc/asound file as the kernel prints it: "key: value" lines. */
function lines(values: Record<string, string | number>): string {
  return Object.entries(values)
    .map(([key, value]) => `${key}: ${value}\n`)
    .join('');
}

describe('agent/drivers/stream-driver', function () {
  this.timeout(30_000);
  let root: string;
  let writer: FileHandle | undefined;
  let handle: DeviceHandle | undefined;

  before(function () {
    if (spawnSync('mkfifo', ['--version'], { stdio: 'ignore' }).status !== 0) {
      console.log('skipped: mkfifo is not installed');
      this.skip();
    }
  });

  beforeEach(() => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'dm-stream-'));
    fs.mkdirSync(path.join(root, 'dev/snd'), { recursive: true });
  });

  afterEach(async () => {
    await handle?.close();
    // Closing the writer also ends a read still waiting on the FIFO.
    await writer?.close().catch(() => undefined);
    handle = writer = undefined;
    fs.rmSync(root, { recursive: true, force: true });
  });

  function driver(kind: StreamKind = 'DEVICE_KIND_VIDEO'): StreamDriver {
    const at = (dir: string): string => path.join(root, dir);
    return new StreamDriver({ kind, devRoot: at('dev'), sysRoot: at('sys'), procRoot: at('proc'), readSize: READ_SIZE });
  }

  /** A FIFO standing in for the device node, opened by the driver and by a writer (the "camera"). */
  async function openFifo(node: string, settings: Record<string, string> = {}, kind?: StreamKind): Promise<DeviceHandle> {
    const fifo = path.join(root, 'dev', node);
    execFileSync('mkfifo', [fifo]);
    // Each open of a FIFO waits for the other end: both at once.
    const [h, w] = await Promise.all([driver(kind).open(fifo, config(settings)), fs.promises.open(fifo, 'w')]);
    handle = h;
    writer = w;
    return h;
  }

  it('relays 1 MiB written into the node complete and in order; the writer closing is the device gone', async () => {
    const h = await openFifo('video0');
    const events: DeviceEvent[] = [];
    h.onEvent((e) => events.push(e));
    const data = crypto.randomBytes(1 << 20);
    const got: Buffer[] = [];
    h.stream.on('data', (chunk: Buffer) => got.push(chunk));
    const closed = new Promise<void>((resolve) => h.stream.once('close', resolve));
    for (let at = 0; writer && at < data.length; ) at += (await writer.write(data.subarray(at, at + 50_000))).bytesWritten;
    await writer?.close();
    writer = undefined;
    await closed;
    assert.ok(Buffer.concat(got).equals(data));
    assert.equal(events.length, 1);
    assert.equal(events[0].type, DeviceEventType.DeviceError);
    assert.match(events[0].data.toString(), /video0: the device is gone \(end of stream\)/);
  });

  it('stops reading while paused, so the writer blocks instead of bytes piling up, and resumes in order', async () => {
    const h = await openFifo('video0');
    const data = crypto.randomBytes(1 << 20);
    const got: Buffer[] = [];
    h.stream.on('data', (chunk: Buffer) => got.push(chunk));
    h.stream.pause();
    let accepted = 0;
    const writing = (async (): Promise<void> => {
      while (accepted < data.length && writer) accepted += (await writer.write(data.subarray(accepted, accepted + 8192))).bytesWritten;
    })();
    // Until the writer stalls: the pipe's buffer and the stream's are full, and no read takes more.
    let last = -1;
    let still = 0;
    await waitFor(() => {
      still = accepted === last ? still + 1 : 0;
      last = accepted;
      return still >= 5;
    }, 'the writer to block');
    assert.ok(accepted < data.length / 2, `the writer got ${accepted} bytes into a paused stream`);
    assert.ok(h.stream.readableLength <= h.stream.readableHighWaterMark + READ_SIZE, `${h.stream.readableLength} bytes buffered`);
    assert.equal(got.length, 0);
    h.stream.resume();
    await writing;
    await waitFor(() => got.reduce((n, c) => n + c.length, 0) >= data.length, 'every byte');
    assert.ok(Buffer.concat(got).equals(data));
  });

  it('refuses writes and commands: capture is read-only', async () => {
    const h = await openFifo('video0');
    await assert.rejects(h.execute({ op: CommandOp.ScpiQuery, target: '', value: 0, data: Buffer.from('*IDN?') }), UnsupportedError);
    const refused = new Promise<unknown>((resolve) => h.stream.once('error', resolve));
    h.stream.write(Buffer.from('frame'));
    const err = await refused;
    assert.ok(err instanceof UnsupportedError);
    assert.match(err.message, /read-only/);
  });

  it('reports a read error as a DeviceError event and stream error', async () => {
    // A directory opens read-only but fails read(2) with EISDIR: a stand-in for an I/O error.
    const dir = path.join(root, 'dev', 'video3');
    fs.mkdirSync(dir);
    handle = await driver().open(dir, config());
    const events: DeviceEvent[] = [];
    handle.onEvent((e) => events.push(e));
    const failed = new Promise<unknown>((resolve) => handle?.stream.once('error', resolve));
    handle.stream.resume();
    const err = await failed;
    assert.ok(err instanceof DeviceError);
    assert.match(err.message, /video3: read failed: .*EISDIR/);
    assert.equal(events.length, 1);
    assert.equal(events[0].data.toString(), err.message);
  });

  it('closes at once while a read waits, without a device-gone event', async () => {
    const h = await openFifo('video0');
    const events: DeviceEvent[] = [];
    h.onEvent((e) => events.push(e));
    h.stream.resume();
    const closed = new Promise<void>((resolve) => h.stream.once('close', resolve));
    await h.close();
    await closed;
    assert.deepEqual(events, []);
  });

  it('reports the configured format and, apart, what the kernel says', async () => {
    write(path.join(root, 'sys/class/video4linux/video0/name'), 'Integrated Camera: Integrated C\n');
    const h = await openFifo('video0', { format: 'mjpeg', width: '1280', height: '720', fps: '30' });
    assert.deepEqual(await h.configuration(), {
      format: 'mjpeg',
      width: '1280',
      height: '720',
      fps: '30',
      bytesRead: '0',
      'probed.name': 'Integrated Camera: Integrated C',
    });
    await h.update(config({ format: 'yuyv' }));
    assert.equal((await h.configuration()).format, 'yuyv');
    await assert.rejects(h.update(config({ rate: '48000' })), /settings\.rate: is not a setting of the video driver/);
  });

  it('reads an audio node with its ALSA format probed from /proc', async () => {
    const pcm = path.join(root, 'proc/asound/card1/pcm0c');
    write(`${pcm}/info`, lines({ card: 1, device: 0, subdevice: 0, stream: 'CAPTURE', id: 'USB Audio', name: 'USB Audio' }));
    const hw = { access: 'RW_INTERLEAVED', format: 'S16_LE', subformat: 'STD', channels: 2, rate: '48000 (48000/1)' };
    write(`${pcm}/sub0/hw_params`, lines({ ...hw, period_size: 1024, buffer_size: 4096 }));
    const h = await openFifo('snd/pcmC1D0c', { format: 'pcm', rate: '44100', channels: '1', sampleFormat: 'S16_LE' }, 'DEVICE_KIND_AUDIO');
    const c = await h.configuration();
    assert.equal(c.rate, '44100', 'the configured rate, as set');
    assert.equal(c['probed.rate'], '48000', 'and what the running substream has');
    assert.equal(c['probed.format'], 'S16_LE');
    assert.equal(c['probed.name'], 'USB Audio');
    const got: Buffer[] = [];
    h.stream.on('data', (chunk: Buffer) => got.push(chunk));
    await writer?.write(Buffer.from([1, 2, 3, 4]));
    await waitFor(() => got.length > 0, 'audio bytes');
    assert.deepEqual([...Buffer.concat(got)], [1, 2, 3, 4]);
  });

  it('lists video nodes with their sysfs names and capture PCM nodes with what /proc tells', async () => {
    for (const node of ['video0', 'video10', 'video2', 'videoX', 'vbi0', 'snd/pcmC0D0c', 'snd/pcmC0D0p', 'snd/pcmC1D2c', 'snd/controlC0']) {
      write(path.join(root, 'dev', node), '');
    }
    write(path.join(root, 'sys/class/video4linux/video0/name'), 'HD Webcam\n');
    write(path.join(root, 'sys/class/video4linux/video2/name'), 'HDMI capture\n');
    const asound = path.join(root, 'proc/asound');
    write(`${asound}/card0/pcm0c/info`, lines({ card: 0, device: 0, stream: 'CAPTURE', id: 'ALC3246 Analog', name: 'ALC3246 Analog' }));
    const hw = { access: 'MMAP_INTERLEAVED', format: 'S32_LE', subformat: 'STD', channels: 2, rate: '44100 (44100/1)' };
    write(`${asound}/card0/pcm0c/sub0/hw_params`, lines({ ...hw, period_size: 441, buffer_size: 1764 }));
    write(`${asound}/card1/pcm2c/info`, lines({ card: 1, device: 2, stream: 'CAPTURE', id: 'USB Mic', name: 'USB Mic', subname: 'subdevice #0' }));
    write(`${asound}/card1/pcm2c/sub0/hw_params`, 'closed\n');
    const dev = path.join(root, 'dev');
    assert.deepEqual(await driver('DEVICE_KIND_VIDEO').list(), [
      { path: `${dev}/video0`, kind: 'DEVICE_KIND_VIDEO', capabilities: ['stream', 'read-only'], labels: { name: 'HD Webcam' } },
      { path: `${dev}/video2`, kind: 'DEVICE_KIND_VIDEO', capabilities: ['stream', 'read-only'], labels: { name: 'HDMI capture' } },
      { path: `${dev}/video10`, kind: 'DEVICE_KIND_VIDEO', capabilities: ['stream', 'read-only'], labels: {} },
    ]);
    assert.deepEqual(await driver('DEVICE_KIND_AUDIO').list(), [
      {
        path: `${dev}/snd/pcmC0D0c`,
        kind: 'DEVICE_KIND_AUDIO',
        capabilities: ['stream', 'read-only', 'format=S32_LE', 'rate=44100', 'channels=2'],
        labels: {
          ...{ card: '0', device: '0', id: 'ALC3246 Analog', name: 'ALC3246 Analog', subname: '' },
          ...{ format: 'S32_LE', rate: '44100', channels: '2', access: 'MMAP_INTERLEAVED' },
        },
      },
      {
        path: `${dev}/snd/pcmC1D2c`,
        kind: 'DEVICE_KIND_AUDIO',
        capabilities: ['stream', 'read-only'],
        labels: { card: '1', device: '2', id: 'USB Mic', name: 'USB Mic', subname: 'subdevice #0' },
      },
    ]);
  });

  it('lists nothing without the node directory, and fails on a malformed kernel file', async () => {
    assert.deepEqual(await new StreamDriver({ kind: 'DEVICE_KIND_AUDIO', devRoot: path.join(root, 'nowhere') }).list(), []);
    write(path.join(root, 'dev/video0'), '');
    write(path.join(root, 'sys/class/video4linux/video0/name'), '\n');
    await assert.rejects(driver().list(), (err: unknown) => err instanceof DeviceError && /video0\/name: empty name/.test(err.message));
  });

  it('refuses settings that are not its own or not valid', () => {
    const video = driver('DEVICE_KIND_VIDEO');
    const audio = driver('DEVICE_KIND_AUDIO');
    const refuses = (d: StreamDriver, settings: Record<string, string>, field: string): void => {
      const named = (err: unknown): boolean => err instanceof ValidationError && err.field === field;
      assert.throws(() => d.validate(config(settings)), named, JSON.stringify(settings));
    };
    refuses(video, { rate: '48000' }, 'settings.rate');
    refuses(audio, { width: '640' }, 'settings.width');
    refuses(video, { format: 'MJPEG' }, 'settings.format');
    refuses(video, { format: '' }, 'settings.format');
    refuses(video, { width: '0' }, 'settings.width');
    refuses(video, { height: '720.5' }, 'settings.height');
    refuses(video, { fps: 'fast' }, 'settings.fps');
    refuses(audio, { rate: '10' }, 'settings.rate');
    refuses(audio, { channels: '65' }, 'settings.channels');
    refuses(audio, { sampleFormat: 's16le' }, 'settings.sampleFormat');
    video.validate(config({ format: 'h264', width: '1920', height: '1080', fps: '29.97' }));
    audio.validate(config({ format: 'pcm', rate: '48000', channels: '2', sampleFormat: 'S24_3LE' }));
  });
});
