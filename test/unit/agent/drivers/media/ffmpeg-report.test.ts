import { strict as assert } from 'node:assert';
import { CaptureReportReader, parseStreamLine } from '../../../../../agent/drivers/media/ffmpeg-report';
import { DeviceError } from '../../../../../src/errors';

describe('agent/drivers/media/ffmpeg-report', () => {
  it('reads video stream lines as ffmpeg 5 prints them (v4l2, lavfi, its output)', () => {
    assert.deepEqual(parseStreamLine('  Stream #0:0: Video: mjpeg (Baseline), yuvj422p(pc, bt470bg/unknown/unknown), 640x480, 30 fps, 30 tbr, 1000k tbn'), {
      type: 'video', codec: 'mjpeg', width: 640, height: 480, fps: 30,
    });
    assert.deepEqual(parseStreamLine('  Stream #0:0: Video: rawvideo (I420 / 0x30323449), yuv420p, 320x240 [SAR 1:1 DAR 4:3], 15 tbr, 15 tbn'), {
      type: 'video', codec: 'rawvideo', width: 320, height: 240, fps: 15,
    });
    assert.deepEqual(parseStreamLine('  Stream #0:0: Video: mjpeg (MJPG / 0x47504A4D), yuvj420p(pc, progressive), 320x240 [SAR 1:1 DAR 4:3], q=2-31, 200 kb/s, 29.97 fps, 1k tbn'), {
      type: 'video', codec: 'mjpeg', width: 320, height: 240, fps: 29.97,
    });
    assert.deepEqual(parseStreamLine('  Stream #0:0(eng): Video: h264, yuv420p, 1920x1080, 1k tbr'), { type: 'video', codec: 'h264', width: 1920, height: 1080, fps: 1000 });
  });

  it('reads audio stream lines: rate, layout or channel count, sample format', () => {
    assert.deepEqual(parseStreamLine('  Stream #0:0: Audio: pcm_s16le, 44100 Hz, mono, s16, 705 kb/s'), { type: 'audio', codec: 'pcm_s16le', rate: 44100, channels: 1, sampleFormat: 's16' });
    assert.deepEqual(parseStreamLine('  Stream #0:0: Audio: pcm_s16le ([1][0][0][0] / 0x0001), 48000 Hz, stereo, s16, 1536 kb/s'), {
      type: 'audio', codec: 'pcm_s16le', rate: 48000, channels: 2, sampleFormat: 's16',
    });
    assert.deepEqual(parseStreamLine('  Stream #0:0: Audio: pcm_f32le, 96000 Hz, 5.1(side), flt'), { type: 'audio', codec: 'pcm_f32le', rate: 96000, channels: 6, sampleFormat: 'flt' });
    assert.deepEqual(parseStreamLine('  Stream #0:0: Audio: pcm_s32le, 8000 Hz, 3 channels, s32'), { type: 'audio', codec: 'pcm_s32le', rate: 8000, channels: 3, sampleFormat: 's32' });
  });

  it('passes over lines that are not video or audio streams', () => {
    assert.equal(parseStreamLine('  Duration: N/A, start: 0.000000, bitrate: N/A'), null);
    assert.equal(parseStreamLine('  Stream #0:1: Subtitle: ass'), null);
    assert.equal(parseStreamLine('  Stream #0:0 -> #0:0 (rawvideo (native) -> mjpeg (native))'), null);
    assert.equal(parseStreamLine(''), null);
  });

  it('refuses malformed stream lines with a DeviceError naming what is missing', () => {
    const refused = (line: string, reason: RegExp): void => {
      assert.throws(() => parseStreamLine(line), (e: unknown) => e instanceof DeviceError && reason.test(e.message));
    };
    refused('  Stream #0:0: Video: mjpeg, yuvj422p, 30 fps', /no frame size/);
    refused('  Stream #0:0: Video: mjpeg, yuvj422p, 0x480', /non-zero frame size/);
    refused('  Stream #0:0: Video: MJPEG!, 640x480', /no codec name/);
    refused('  Stream #0:0: Audio: pcm_s16le, stereo, s16', /no sample rate/);
    refused('  Stream #0:0: Audio: pcm_s16le, 0 Hz, stereo, s16', /non-zero sample rate/);
    refused('  Stream #0:0: Audio: pcm_s16le, 48000 Hz', /no channel layout/);
    refused('  Stream #0:0: Audio: pcm_s16le, 48000 Hz, stereo', /no sample format/);
    refused('  Stream #0:0: Audio: pcm_s16le, 48000 Hz, surround-ish, s16', /"surround-ish" is not a channel layout/);
  });

  it('follows a whole report: the first input stream and the first output stream', () => {
    const reader = new CaptureReportReader('video');
    const lines = [
      "Input #0, video4linux2,v4l2, from '/dev/video0':",
      '  Duration: N/A, start: 1234.5, bitrate: N/A',
      '  Stream #0:0: Video: mjpeg (Baseline), yuvj422p(pc, bt470bg/unknown/unknown), 1280x720, 30 fps, 30 tbr, 1000k tbn',
      'Stream mapping:',
      '  Stream #0:0 -> #0:0 (copy)',
      "Output #0, matroska, to 'pipe:1':",
    ];
    for (const l of lines) assert.equal(reader.line(l), null);
    const report = reader.line('  Stream #0:0: Video: mjpeg (MJPG / 0x47504A4D), yuvj422p(pc, bt470bg/unknown/unknown), 1280x720, q=2-31, 30 fps, 1k tbn');
    assert.deepEqual(report?.input, { type: 'video', codec: 'mjpeg', width: 1280, height: 720, fps: 30 });
    assert.equal(report?.output.type, 'video');
    assert.equal(reader.line('  Stream #0:0: Video: x, 1x1'), null, 'done after the report');
  });

  it('refuses a report of the wrong kind or in the wrong order', () => {
    const audio = new CaptureReportReader('audio');
    audio.line("Input #0, lavfi, from 'x':");
    assert.throws(() => audio.line('  Stream #0:0: Video: mjpeg, 640x480'), /a video stream where audio was captured/);
    const early = new CaptureReportReader('audio');
    early.line("Output #0, matroska, to 'pipe:1':");
    assert.throws(() => early.line('  Stream #0:0: Audio: pcm_s16le, 48000 Hz, stereo, s16'), /output before its input/);
  });
});
