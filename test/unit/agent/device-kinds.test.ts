import { strict as assert } from 'node:assert';
import * as path from 'node:path';
import fc from 'fast-check';
import { compileGlob, KIND_WORDS, kindWord, parseWatchSpec } from '../../../agent/device-kinds';
import { usbDeviceId } from '../../../agent/drivers/usb-identity';
import { ValidationError } from '../../../src/errors';

function refused(spec: string, reason: RegExp): void {
  assert.throws(
    () => parseWatchSpec(spec),
    (err: unknown) => err instanceof ValidationError && err.field === '--watch' && reason.test(err.message),
    `"${spec}" must be refused with ${reason}`,
  );
}

describe('agent/device-kinds', () => {
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

    it('takes every other character of a name literally', () => {
      const name = fc.string({ minLength: 1, maxLength: 30 }).filter((s) => !/[*?/\0]/.test(s) && s !== '.' && s !== '..');
      fc.assert(
        fc.property(name, fc.string({ minLength: 1, maxLength: 3 }), (n, extra) => {
          const g = compileGlob(`/dev/${n}`);
          assert.ok(g.pattern.test(n), `${JSON.stringify(n)} matches itself`);
          assert.ok(!g.pattern.test(n + extra), `${JSON.stringify(n)} does not match a longer name`);
        }),
      );
    });
  });

  describe('parseWatchSpec', () => {
    it('takes a kind word before the glob', () => {
      for (const [word, kind] of Object.entries(KIND_WORDS)) {
        const spec = parseWatchSpec(`${word}:/dev/thing*`);
        assert.equal(spec.kind, kind);
        assert.equal(spec.spec, `${word}:/dev/thing*`);
        assert.equal(spec.glob.dir, '/dev');
        assert.ok(spec.glob.pattern.test('thing0'));
        assert.equal(kindWord(kind), word);
      }
      assert.equal(parseWatchSpec('serial:/dev/hidraw*').kind, 'DEVICE_KIND_SERIAL', 'a given kind beats the name');
      assert.equal(parseWatchSpec('sensor:/sys/bus/iio/devices/iio:device*').glob.dir, '/sys/bus/iio/devices');
      assert.equal(parseWatchSpec('hid:hidraw*').glob.dir, process.cwd(), 'a relative glob after a kind');
    });

    it('infers the kind from the device name when none is given', () => {
      const cases: Array<[string, string]> = [
        ['/dev/hidraw*', 'DEVICE_KIND_HID'],
        ['/dev/gpiochip?', 'DEVICE_KIND_GPIO'],
        ['/sys/bus/iio/devices/iio:device*', 'DEVICE_KIND_SENSOR'],
        ['/dev/usbtmc*', 'DEVICE_KIND_LAB_CARD'],
        ['/dev/video*', 'DEVICE_KIND_VIDEO'],
        ['/dev/snd/pcmC*D*p', 'DEVICE_KIND_AUDIO'],
        ['/dev/ttyUSB*', 'DEVICE_KIND_SERIAL'],
        ['/dev/serial/by-id/*', 'DEVICE_KIND_SERIAL'],
        ['/tmp/pcm*', 'DEVICE_KIND_SERIAL'],
        ['/dev/hid*', 'DEVICE_KIND_SERIAL'],
      ];
      for (const [glob, kind] of cases) assert.equal(parseWatchSpec(glob).kind, kind, glob);
      const iio = parseWatchSpec('iio:device*');
      assert.equal(iio.kind, 'DEVICE_KIND_SENSOR', 'the colon of iio:device is no kind');
      assert.equal(iio.glob.dir, process.cwd());
      assert.ok(iio.glob.pattern.test('iio:device0'));
      assert.equal(parseWatchSpec(path.join('/dev/snd', 'pcmC0D0c')).glob.pattern.test('pcmC0D0c'), true);
    });

    it('refuses malformed specs with a --watch ValidationError', () => {
      refused('', /empty glob/);
      refused('serial:', /no glob/);
      refused('serail:/dev/ttyUSB*', /unknown kind "serail".*serial, hid, gpio, sensor, lab, video, audio/);
      refused('Serial:/dev/ttyUSB*', /unknown kind "Serial"/);
      refused('/dev/*/ttyUSB0', /wildcards are only allowed in the last path segment/);
      refused('hid:/dev/inp?t/hidraw*', /wildcards are only allowed in the last path segment/);
      refused('/', /names no file/);
    });
  });

  it('names no word for a kind the agent does not watch', () => {
    assert.throws(() => kindWord('DEVICE_KIND_UNSPECIFIED'), ValidationError);
  });

  it('derives a USB device id from vendor, product and serial number, and none without a serial number', () => {
    assert.equal(usbDeviceId('0403', '6001', 'A50285BI'), 'usb-0403:6001:A50285BI');
    assert.equal(usbDeviceId(0x46d, 0xc52b, 'X1'), 'usb-046d:c52b:X1');
    assert.equal(usbDeviceId('0403', '6001', undefined), undefined);
    assert.equal(usbDeviceId('', '6001', 'A'), undefined);
  });
});
