import { strict as assert } from 'node:assert';
import { captureSettings } from '../../../../../agent/drivers/media/capture-settings';
import { ffmpegCaptureArgs, MATROSKA_OUT } from '../../../../../agent/drivers/media/ffmpeg-args';
import { DeviceError, ValidationError } from '../../../../../src/errors';

const COMMON = ['-hide_banner', '-nostdin', '-nostats', '-loglevel', 'info'];
const spec = (kind: 'DEVICE_KIND_VIDEO' | 'DEVICE_KIND_AUDIO', path: string, settings: Record<string, string>) =>
  captureSettings(kind, path, { serial: null, settings }).spec;

describe('agent/drivers/media/ffmpeg-args', () => {
  it('v4l2: an MJPEG camera at the binding\'s size and rate, frames copied into live Matroska', () => {
    const s = spec('DEVICE_KIND_VIDEO', '/dev/video0', { format: 'mjpeg', width: '1280', height: '720', fps: '30' });
    assert.deepEqual(ffmpegCaptureArgs(s, 'device'), [
      ...COMMON, '-f', 'v4l2', '-input_format', 'mjpeg', '-video_size', '1280x720', '-framerate', '30', '-i', '/dev/video0',
      '-map', '0:v:0', '-c:v', 'copy',
      '-f', 'matroska', '-live', '1', '-cluster_time_limit', '0', '-cluster_size_limit', '1', '-flush_packets', '1', 'pipe:1',
    ]);
  });

  it('v4l2: a YUYV camera is encoded to MJPEG; unset settings are not passed (the device keeps its own)', () => {
    assert.deepEqual(ffmpegCaptureArgs(spec('DEVICE_KIND_VIDEO', '/dev/video2', { format: 'yuyv422' }), 'device'), [
      ...COMMON, '-f', 'v4l2', '-input_format', 'yuyv422', '-i', '/dev/video2', '-map', '0:v:0', '-c:v', 'mjpeg', '-q:v', '5', ...MATROSKA_OUT,
    ]);
    assert.deepEqual(ffmpegCaptureArgs(spec('DEVICE_KIND_VIDEO', '/dev/video0', { fps: '7.5' }), 'device'), [
      ...COMMON, '-f', 'v4l2', '-framerate', '7.5', '-i', '/dev/video0', '-map', '0:v:0', '-c:v', 'mjpeg', '-q:v', '5', ...MATROSKA_OUT,
    ]);
  });

  it('alsa: the PCM behind the node at the binding\'s rate, channels and sample format, copied', () => {
    const s = spec('DEVICE_KIND_AUDIO', '/dev/snd/pcmC1D0c', { rate: '44100', channels: '1', sampleFormat: 'S32_LE' });
    assert.deepEqual(ffmpegCaptureArgs(s, 'device'), [
      ...COMMON, '-c:a', 'pcm_s32le', '-f', 'alsa', '-sample_rate', '44100', '-channels', '1', '-i', 'hw:1,0', '-map', '0:a:0', '-c:a', 'copy', ...MATROSKA_OUT,
    ]);
    assert.deepEqual(ffmpegCaptureArgs(spec('DEVICE_KIND_AUDIO', '/dev/snd/pcmC0D2c', {}), 'device'), [
      ...COMMON, '-f', 'alsa', '-i', 'hw:0,2', '-map', '0:a:0', '-c:a', 'copy', ...MATROSKA_OUT,
    ]);
  });

  it('lavfi stand-ins take the same settings, paced in real time', () => {
    assert.deepEqual(ffmpegCaptureArgs(spec('DEVICE_KIND_VIDEO', '/tmp/video0', { width: '320', height: '240', fps: '15' }), 'lavfi'), [
      ...COMMON, '-re', '-f', 'lavfi', '-i', 'testsrc2=size=320x240:rate=15', '-map', '0:v:0', '-c:v', 'mjpeg', '-q:v', '5', ...MATROSKA_OUT,
    ]);
    assert.deepEqual(ffmpegCaptureArgs(spec('DEVICE_KIND_AUDIO', '/tmp/pcmC0D0c', { rate: '22050', channels: '1' }), 'lavfi'), [
      ...COMMON, '-re', '-f', 'lavfi', '-i', 'sine=frequency=1000:sample_rate=22050', '-map', '0:a:0', '-ac', '1', '-c:a', 'pcm_s16le', ...MATROSKA_OUT,
    ]);
  });

  it('refuses what ffmpeg cannot set, with the setting named', () => {
    const refused = (kind: 'DEVICE_KIND_VIDEO' | 'DEVICE_KIND_AUDIO', path: string, settings: Record<string, string>, reason: RegExp): void => {
      assert.throws(() => ffmpegCaptureArgs(spec(kind, path, settings), 'device'), (e: unknown) => (e instanceof ValidationError || e instanceof DeviceError) && reason.test(e.message));
    };
    refused('DEVICE_KIND_VIDEO', '/dev/video0', { width: '640' }, /width and height are set together/);
    refused('DEVICE_KIND_VIDEO', '/dev/video0', { capture: 'mmap' }, /not one of ffmpeg, read/);
    refused('DEVICE_KIND_VIDEO', '/dev/video0', { codec: 'h264' }, /settings.codec.*not a setting/);
    refused('DEVICE_KIND_AUDIO', '/dev/snd/pcmC0D0c', { sampleFormat: 'S24_LE' }, /S24_LE cannot be captured by ffmpeg/);
    refused('DEVICE_KIND_AUDIO', '/dev/snd/pcmC0D0p', {}, /not an ALSA capture node/);
    refused('DEVICE_KIND_AUDIO', '/tmp/fifo', {}, /settings.capture: read/);
  });
});
