import { strict as assert } from 'node:assert';
import { parseHwParams, parsePcmInfo, parseV4l2Name } from '../../../../agent/drivers/stream-format';
import { DeviceError } from '../../../../src/errors';

const INFO = [
  'card: 0',
  'device: 3',
  'subdevice: 0',
  'stream: CAPTURE',
  'id: HDMI 0',
  'name: HDMI 0',
  'subname: subdevice #0',
  'class: 0',
  'subclass: 0',
  'subdevices_count: 1',
  'subdevices_avail: 1',
  '',
].join('\n');
const HW = 'access: RW_INTERLEAVED\nformat: S16_LE\nsubformat: STD\nchannels: 2\nrate: 48000 (48000/1)\nperiod_size: 1024\nbuffer_size: 4096\n';

function refused(parse: () => unknown, reason: RegExp): void {
  assert.throws(parse, (err: unknown) => err instanceof DeviceError && reason.test(err.message));
}

describe('agent/drivers/stream-format', () => {
  describe('parseV4l2Name', () => {
    it('reads the one-line name', () => {
      assert.equal(parseV4l2Name('Integrated Camera: Integrated C\n', 'f'), 'Integrated Camera: Integrated C');
      assert.equal(parseV4l2Name('vivid', 'f'), 'vivid');
    });

    it('refuses empty, multi-line, control characters and over-long names', () => {
      refused(() => parseV4l2Name('', 'f'), /f: empty name/);
      refused(() => parseV4l2Name('\n', 'f'), /empty name/);
      refused(() => parseV4l2Name('a\nb\n', 'f'), /not one line/);
      refused(() => parseV4l2Name('cam\x00era\n', 'f'), /not one line/);
      refused(() => parseV4l2Name(`${'x'.repeat(32)}\n`, 'f'), /32 characters/);
    });
  });

  describe('parsePcmInfo', () => {
    it('reads the kernel\'s PCM description', () => {
      const expected = { card: 0, device: 3, stream: 'CAPTURE', id: 'HDMI 0', name: 'HDMI 0', subname: 'subdevice #0' };
      assert.deepEqual(parsePcmInfo(INFO, 'f'), expected);
    });

    it('refuses malformed files', () => {
      refused(() => parsePcmInfo('', 'info'), /info: empty/);
      refused(() => parsePcmInfo('error -19\n', 'info'), /could not describe the PCM \(error -19\)/);
      refused(() => parsePcmInfo(INFO.replace('stream: CAPTURE', 'stream: SIDEWAYS'), 'f'), /neither CAPTURE nor PLAYBACK/);
      refused(() => parsePcmInfo(INFO.replace('card: 0', 'card: zero'), 'f'), /card "zero" is not a whole number/);
      refused(() => parsePcmInfo(INFO.replace('card: 0', 'card: -1'), 'f'), /not a whole number/);
      refused(() => parsePcmInfo(INFO.replace('id: HDMI 0\n', ''), 'f'), /f: no id/);
      refused(() => parsePcmInfo(`${INFO}card: 1\n`, 'f'), /card appears twice/);
      refused(() => parsePcmInfo(INFO.replace('class: 0', 'class 0'), 'f'), /"class 0" is not a "key: value" line/);
      refused(() => parsePcmInfo(`${INFO}\n`, 'f'), /"" is not a "key: value" line/);
      refused(() => parsePcmInfo(INFO.replace('name: HDMI 0', 'name: HD\tMI'), 'f'), /not a "key: value" line/);
    });
  });

  describe('parseHwParams', () => {
    it('reads a running substream\'s setup, with or without OSS lines', () => {
      const expected = { access: 'RW_INTERLEAVED', format: 'S16_LE', channels: 2, rate: 48000, periodSize: 1024, bufferSize: 4096 };
      assert.deepEqual(parseHwParams(HW, 'f'), expected);
      assert.deepEqual(parseHwParams(`${HW}OSS format: S16_LE\nOSS channels: 2\nOSS rate: 48000\n`, 'f'), expected);
    });

    it('is null while nobody captures', () => {
      assert.equal(parseHwParams('closed\n', 'f'), null);
      assert.equal(parseHwParams('no setup\n', 'f'), null);
    });

    it('refuses malformed files', () => {
      refused(() => parseHwParams('', 'hw'), /hw: empty/);
      refused(() => parseHwParams('closed', 'f'), /"closed" is not a "key: value" line/);
      refused(() => parseHwParams(HW.replace('48000 (48000/1)', '48000'), 'f'), /rate "48000" is not "<hz> \(<num>\/<den>\)"/);
      refused(() => parseHwParams(HW.replace('48000 (48000/1)', 'fast (1/1)'), 'f'), /rate "fast \(1\/1\)"/);
      refused(() => parseHwParams(HW.replace('channels: 2', 'channels: 0'), 'f'), /0 channels/);
      refused(() => parseHwParams(HW.replace('channels: 2', 'channels: 2.5'), 'f'), /channels "2.5" is not a whole number/);
      refused(() => parseHwParams(HW.replace('format: S16_LE', 'format: s16 le'), 'f'), /not an ALSA sample format name/);
      refused(() => parseHwParams(HW.replace('buffer_size: 4096\n', ''), 'f'), /no buffer_size/);
      refused(() => parseHwParams(`${HW}rate: 44100 (44100/1)\n`, 'f'), /rate appears twice/);
    });
  });
});
