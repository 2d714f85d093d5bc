import { strict as assert } from 'node:assert';
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { FfmpegCapture } from '../../../agent/drivers/media/ffmpeg-capture';
import { MediaDriver } from '../../../agent/drivers/media/media-driver';
import type { DeviceHandle } from '../../../agent/drivers/device-driver';
import { DeviceError } from '../../../src/errors';

const haveFfmpeg = spawnSync('ffprobe', ['-version']).status === 0 && spawnSync('ffmpeg', ['-version']).status === 0;

interface ProbedStream {
  codec_name: string;
  width?: number;
  height?: number;
  r_frame_rate?: string;
  sample_rate?: string;
  channels?: number;
  nb_read_frames?: string;
}

function ffprobe(file: string): ProbedStream {
  const out = execFileSync('ffprobe', ['-v', 'error', '-count_frames', '-show_streams', '-of', 'json', file], { encoding: 'utf8' });
  const streams = (JSON.parse(out) as { streams: ProbedStream[] }).streams;
  assert.equal(streams.length, 1);
  return streams[0] as ProbedStream;
}

/** Collects the handle's chunks for `ms`, then closes it. */
async function record(handle: DeviceHandle, ms: number): Promise<Buffer[]> {
  const chunks: Buffer[] = [];
  handle.stream.on('data', (c: Buffer) => chunks.push(c));
  await new Promise((r) => setTimeout(r, ms));
  await handle.close();
  return chunks;
}

/**
 * A real ffmpeg child per open device, fed by ffmpeg's lavfi stand-ins (this machine has no
 * camera or microphone): what ffprobe reads from the chunks, the read-back of ffmpeg's report,
 * and the stream's end when ffmpeg goes.
 */
describe('integration: media capture through a real ffmpeg child', function () {
  this.timeout(60_000);
  let tmp: string;
  before(function () {
    if (!haveFfmpeg) {
      console.log('    skipped: ffmpeg/ffprobe are not installed (scripts/install-test-deps.sh installs them)');
      this.skip();
    }
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'dm-media-'));
  });
  after(() => tmp && fs.rmSync(tmp, { recursive: true, force: true }));

  it('video: whole frames of MJPEG in live Matroska at the configured size and rate, read back from ffmpeg', async () => {
    const driver = new MediaDriver({ kind: 'DEVICE_KIND_VIDEO', source: 'lavfi' });
    const handle = await driver.open('/dev/video9', { serial: null, settings: { width: '320', height: '240', fps: '15' } });
    const config = await handle.configuration();
    assert.equal(config['readBack.width'], '320');
    assert.equal(config['readBack.height'], '240');
    assert.equal(config['readBack.fps'], '15');
    assert.equal(config['delivered.codec'], 'mjpeg');
    const chunks = await record(handle, 2500);
    assert.ok(chunks.length >= 20, `${chunks.length} units in 2.5 s at 15 fps`);
    const file = path.join(tmp, 'video.mkv');
    fs.writeFileSync(file, Buffer.concat(chunks));
    const probed = ffprobe(file);
    assert.equal(probed.codec_name, 'mjpeg');
    assert.equal(probed.width, 320);
    assert.equal(probed.height, 240);
    assert.equal(probed.r_frame_rate, '15/1');
    assert.equal(Number(probed.nb_read_frames), chunks.length - 1, 'one frame per unit after the header');
  });

  it('audio: PCM at the configured rate and channels', async () => {
    const driver = new MediaDriver({ kind: 'DEVICE_KIND_AUDIO', source: 'lavfi' });
    const handle = await driver.open('/dev/snd/pcmC9D0c', { serial: null, settings: { rate: '22050', channels: '1', sampleFormat: 'S16_LE' } });
    const config = await handle.configuration();
    assert.equal(config['delivered.rate'], '22050');
    assert.equal(config['delivered.channels'], '1');
    const file = path.join(tmp, 'audio.mkv');
    fs.writeFileSync(file, Buffer.concat(await record(handle, 1500)));
    const probed = ffprobe(file);
    assert.equal(probed.codec_name, 'pcm_s16le');
    assert.equal(probed.sample_rate, '22050');
    assert.equal(probed.channels, 1);
  });

  it('a device ffmpeg cannot open is refused with ffmpeg\'s reason', async () => {
    const driver = new MediaDriver({ kind: 'DEVICE_KIND_VIDEO' });
    await assert.rejects(driver.open(path.join(tmp, 'video0'), { serial: null, settings: {} }), (e: unknown) => e instanceof DeviceError && /capture ended.*No such file or directory/.test(e.message));
  });

  it('ffmpeg going away ends the stream with a DeviceError carrying its exit', async () => {
    const driver = new MediaDriver({ kind: 'DEVICE_KIND_VIDEO', source: 'lavfi' });
    const handle = await driver.open('/dev/video9', { serial: null, settings: { width: '160', height: '120', fps: '10' } });
    const ended = new Promise<Error>((resolve) => handle.stream.once('error', resolve));
    handle.stream.resume();
    const pid = (handle.stream as FfmpegCapture).pid;
    assert.ok(pid !== undefined);
    process.kill(pid, 'SIGKILL');
    const err = await ended;
    assert.ok(err instanceof DeviceError);
    assert.match(err.message, /\/dev\/video9: the capture ended \(ffmpeg killed by SIGKILL\)/);
  });
});
