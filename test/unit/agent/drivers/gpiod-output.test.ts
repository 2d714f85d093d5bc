import { strict as assert } from 'node:assert';
import fc from 'fast-check';
import {
  GpiodOutputError,
  parseGpiodVersion,
  parseGpiodetect,
  parseGpiogetValues,
  parseGpioinfo,
  parseGpiomonEvent,
  parseGpiomonEventV2,
} from '../../../../agent/drivers/gpiod-output';
import { DeviceError } from '../../../../src/errors';

/** gpioinfo as libgpiod 1.6 prints it on a Raspberry Pi-like chip, padding and trailing spaces included. */
const GPIOINFO = [
  'gpiochip0 - 6 lines:',
  '\tline   0:     "ID_SDA"       unused   input  active-high ',
  '\tline   1:      unnamed       kernel   input  active-high [used]',
  '\tline   2:     "GPIO17"    "gpioset"  output   active-low [used pull-up]',
  '\tline   3:      unnamed    "gpiomon"   input  active-high [used open-drain bias-disabled]',
  '\tline   4: "a-very-long-line-name" "led0" output active-high [used]',
  '\tline   5: "with space"       unused  output  active-high ',
  'gpiochip1 - 1 lines:',
  '\tline   0:      unnamed       unused   input  active-high ',
  '',
].join('\n');

function throwsOutput(fn: () => unknown, reason: RegExp): void {
  assert.throws(fn, (err: unknown) => err instanceof GpiodOutputError && err instanceof DeviceError && reason.test(err.message));
}

describe('agent/drivers/gpiod-output', () => {
  describe('parseGpiodetect', () => {
    it('reads name, label and line count of each chip, and the chips it could not open', () => {
      const out = 'gpiochip0 [pinctrl-bcm2711] (58 lines)\ngpiochip1 [raspberrypi-exp-gpio] (8 lines)\ngpiochip2 Permission denied\n';
      assert.deepEqual(parseGpiodetect(out), {
        chips: [
          { name: 'gpiochip0', label: 'pinctrl-bcm2711', lines: 58 },
          { name: 'gpiochip1', label: 'raspberrypi-exp-gpio', lines: 8 },
        ],
        denied: ['gpiochip2'],
      });
    });

    it('reads no chips from no output', () => {
      assert.deepEqual(parseGpiodetect(''), { chips: [], denied: [] });
    });

    it('refuses what is not its format', () => {
      throwsOutput(() => parseGpiodetect('gpiochip0 [a] (x lines)\n'), /gpiodetect printed a line/);
      throwsOutput(() => parseGpiodetect('gpiochip0 (8 lines)\n'), /gpiodetect printed/);
      throwsOutput(() => parseGpiodetect('gpiochip0 [a] (8 lines)'), /cut short/);
      throwsOutput(() => parseGpiodetect('\n'), /gpiodetect printed a line/);
    });

    it('reads any label back (property)', () => {
      fc.assert(
        fc.property(fc.stringMatching(/^[^\n]*$/), fc.nat(4096), fc.nat(99), (label, lines, n) => {
          const [chip] = parseGpiodetect(`gpiochip${n} [${label}] (${lines} lines)\n`).chips;
          assert.deepEqual(chip, { name: `gpiochip${n}`, label, lines });
        }),
      );
    });
  });

  describe('parseGpioinfo', () => {
    it('reads every line of every chip', () => {
      const [chip0, chip1] = parseGpioinfo(GPIOINFO);
      assert.equal(chip0.name, 'gpiochip0');
      assert.equal(chip0.lines.length, 6);
      assert.deepEqual(chip0.lines[0], {
        offset: 0, name: 'ID_SDA', used: false, consumer: null, direction: 'input', activeLow: false, bias: 'as-is', drive: 'push-pull',
      });
      assert.deepEqual(chip0.lines[1], {
        offset: 1, name: null, used: true, consumer: null, direction: 'input', activeLow: false, bias: 'as-is', drive: 'push-pull',
      });
      assert.deepEqual(chip0.lines[2], {
        offset: 2, name: 'GPIO17', used: true, consumer: 'gpioset', direction: 'output', activeLow: true, bias: 'pull-up', drive: 'push-pull',
      });
      assert.equal(chip0.lines[3].bias, 'disable');
      assert.equal(chip0.lines[3].drive, 'open-drain');
      assert.equal(chip0.lines[4].name, 'a-very-long-line-name');
      assert.equal(chip0.lines[4].consumer, 'led0');
      assert.equal(chip0.lines[5].name, 'with space');
      assert.deepEqual(chip1, { name: 'gpiochip1', lines: [{ ...chip0.lines[0], name: null }] });
    });

    it('refuses a chip with fewer lines than its header says', () => {
      throwsOutput(() => parseGpioinfo('gpiochip0 - 2 lines:\n\tline   0:      unnamed       unused   input  active-high \n'), /1 of the 2 lines/);
    });

    it('refuses lines out of order, unknown flags, a consumer without "used", and junk', () => {
      const line = (text: string): string => `gpiochip0 - 1 lines:\n${text}\n`;
      throwsOutput(() => parseGpioinfo(line('\tline   1:      unnamed       unused   input  active-high ')), /line 1 where line 0 belongs/);
      throwsOutput(() => parseGpioinfo(line('\tline   0:      unnamed       kernel   input  active-high [used turbo]')), /unknown flag "turbo"/);
      throwsOutput(() => parseGpioinfo(line('\tline   0:      unnamed      "x"   input  active-high ')), /disagrees with the "used" flag/);
      throwsOutput(() => parseGpioinfo(line('\tline   0:      unnamed       unused   sideways  active-high ')), /not a line description/);
      throwsOutput(() => parseGpioinfo('gpiochip0 has 3 lines\n'), /header belongs/);
      throwsOutput(() => parseGpioinfo(GPIOINFO.slice(0, -1)), /cut short/);
    });
  });

  describe('parseGpiogetValues', () => {
    it('reads the values in the order asked', () => {
      assert.deepEqual(parseGpiogetValues('0 1 1 0\n', 4), [0, 1, 1, 0]);
      assert.deepEqual(parseGpiogetValues('1\n', 1), [1]);
    });

    it('refuses other values, a wrong count and a cut line', () => {
      throwsOutput(() => parseGpiogetValues('0 2\n', 2), /other than 0\/1/);
      throwsOutput(() => parseGpiogetValues('0 1\n', 3), /2 values for 3 lines/);
      throwsOutput(() => parseGpiogetValues('0 1', 2), /other than 0\/1/);
      throwsOutput(() => parseGpiogetValues('', 1), /other than 0\/1/);
    });
  });

  describe('parseGpiomonEvent', () => {
    it('reads rising and falling edges with the kernel timestamp', () => {
      assert.deepEqual(parseGpiomonEvent('event:  RISING EDGE offset: 17 timestamp: [    1234.000000042]'), { offset: 17, rising: true, sec: 1234, nsec: 42 });
      assert.deepEqual(parseGpiomonEvent('event: FALLING EDGE offset: 0 timestamp: [1700000000.123456789]'), {
        offset: 0, rising: false, sec: 1700000000, nsec: 123456789,
      });
    });

    it('refuses what is not an event in the default format', () => {
      throwsOutput(() => parseGpiomonEvent('17 1 1234 42'), /not an edge event/);
      throwsOutput(() => parseGpiomonEvent('event: RISING EDGE offset: 1 timestamp: [1.000000001]'), /not an edge event/);
      throwsOutput(() => parseGpiomonEvent('event:  RISING EDGE offset: 1 timestamp: [1.1]'), /not an edge event/);
      throwsOutput(() => parseGpiomonEvent(''), /not an edge event/);
    });

    it('reads back what printf("event: %s offset: %u timestamp: [%8ld.%09ld]") prints (property)', () => {
      fc.assert(
        fc.property(fc.boolean(), fc.nat(1023), fc.nat(2 ** 40), fc.nat(999_999_999), (rising, offset, sec, nsec) => {
          const text = `event: ${rising ? ' RISING EDGE' : 'FALLING EDGE'} offset: ${offset} timestamp: [${String(sec).padStart(8)}.${String(nsec).padStart(9, '0')}]`;
          assert.deepEqual(parseGpiomonEvent(text), { offset, rising, sec, nsec });
        }),
      );
    });
  });

  describe('libgpiod v2', () => {
    /** print_line_info() of v2's gpioinfo: a tab after the offset and after the padded name. */
    const V2_INFO = [
      'gpiochip0 - 5 lines:',
      '\tline   0:\t"ID_SDA"        \tinput',
      '\tline   1:\tunnamed         \tinput consumer=kernel',
      '\tline   2:\t"GPIO17"        \toutput active-low bias=pull-up consumer="gpioset"',
      '\tline   3:\tunnamed         \tinput drive=open-drain bias=disabled edges=both event-clock=realtime debounce-period=10ms consumer="my mon"',
      '\tline   4:\t"a-very-long-line-name"\toutput consumer=""',
      '',
    ].join('\n');

    it('reads the generation from gpiodetect --version', () => {
      assert.equal(parseGpiodVersion('gpiodetect (libgpiod) v1.6.3\nCopyright (C) 2017-2018 Bartosz Golaszewski\n'), 1);
      assert.equal(parseGpiodVersion('gpiodetect (libgpiod) v2.1.3\nCopyright (C) 2017-2023 Bartosz Golaszewski\n'), 2);
      for (const bad of ['', 'gpiodetect v2.1\n', 'gpiodetect (libgpiod) v3.0\n', 'gpiodetect (libgpiod) vX\n']) {
        assert.throws(() => parseGpiodVersion(bad), GpiodOutputError, bad);
      }
    });

    it('reads every line of v2 gpioinfo', () => {
      const [chip] = parseGpioinfo(V2_INFO, 2);
      assert.deepEqual(
        chip.lines.map((l) => [l.offset, l.name, l.used, l.consumer, l.direction, l.activeLow, l.bias, l.drive]),
        [
          [0, 'ID_SDA', false, null, 'input', false, 'as-is', 'push-pull'],
          [1, null, true, null, 'input', false, 'as-is', 'push-pull'],
          [2, 'GPIO17', true, 'gpioset', 'output', true, 'pull-up', 'push-pull'],
          [3, null, true, 'my mon', 'input', false, 'disable', 'open-drain'],
          [4, 'a-very-long-line-name', true, '', 'output', false, 'as-is', 'push-pull'],
        ],
      );
    });

    it('refuses v2 gpioinfo with unknown attributes, bad values, lines out of order or the v1.6 format', () => {
      const bad = [
        'gpiochip0 - 1 lines:\n\tline   0:\tunnamed         \tinput sparkly\n',
        'gpiochip0 - 1 lines:\n\tline   0:\tunnamed         \tinput bias=sideways\n',
        'gpiochip0 - 1 lines:\n\tline   0:\tunnamed         \tinput drive\n',
        'gpiochip0 - 1 lines:\n\tline   1:\tunnamed         \tinput\n',
        'gpiochip0 - 1 lines:\n\tline   0:      unnamed       unused   input  active-high \n',
        'gpiochip0 - 2 lines:\n\tline   0:\tunnamed         \tinput\n',
      ];
      for (const out of bad) assert.throws(() => parseGpioinfo(out, 2), GpiodOutputError, out);
      assert.throws(() => parseGpioinfo(GPIOINFO, 2), GpiodOutputError);
    });

    it("reads back what gpiomon --format='%o %E %S' prints, and refuses the rest (property)", () => {
      fc.assert(
        fc.property(fc.boolean(), fc.nat(1023), fc.nat(2 ** 40), fc.nat(999_999_999), (rising, offset, sec, nsec) => {
          const line = `${offset} ${rising ? 'rising' : 'falling'} ${sec}.${String(nsec).padStart(9, '0')}`;
          assert.deepEqual(parseGpiomonEventV2(line), { offset, rising, sec, nsec });
        }),
      );
      for (const bad of ['', '3 rising', '3 up 1.000000000', '3 rising 1.5', 'x rising 1.000000000', '3 rising 1.000000000 ']) {
        assert.throws(() => parseGpiomonEventV2(bad), (err: unknown) => err instanceof GpiodOutputError && err instanceof DeviceError, bad);
      }
    });
  });
});
