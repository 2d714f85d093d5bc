import { strict as assert } from 'node:assert';
import fc from 'fast-check';
import { ProtocolError } from '../../../src/errors';
import {
  BOTHER,
  CBAUD,
  CRTSCTS,
  CSTOPB,
  decodeTermios2,
  encodeTermios2,
  IXOFF,
  IXON,
  ptyLineSettings,
  type Termios2,
  TERMIOS2_SIZE,
  withPtyLineSettings,
} from '../../../src/pty/termios2';

/** fast-check records have a null prototype: the assertions compare plain copies ({ ...t }). */
const u32 = fc.integer({ min: 0, max: 0xffffffff });
const termios: fc.Arbitrary<Termios2> = fc.record({
  iflag: u32,
  oflag: u32,
  cflag: u32,
  lflag: u32,
  line: fc.integer({ min: 0, max: 255 }),
  cc: fc.uint8Array({ minLength: 19, maxLength: 19 }).map((a) => Buffer.from(a)),
  ispeed: u32,
  ospeed: u32,
});
const settings = fc.record({
  baudRate: fc.oneof(fc.constantFrom(0, 50, 300, 9600, 19200, 38400, 57600, 115200, 4_000_000), fc.integer({ min: 1, max: 4_000_000 })),
  stopBits: fc.constantFrom(1, 2),
  flowControl: fc.constantFrom(1, 2, 3),
});

describe('pty: struct termios2 codec', () => {
  it('decodes the kernel layout: flags, line, 19 control characters, then the speeds', () => {
    const b = Buffer.alloc(TERMIOS2_SIZE);
    b.writeUInt32LE(0x11, 0);
    b.writeUInt32LE(0x22, 4);
    b.writeUInt32LE((BOTHER | CSTOPB | CRTSCTS) >>> 0, 8);
    b.writeUInt32LE(0x44, 12);
    b[16] = 7;
    for (let i = 0; i < 19; i++) b[17 + i] = i + 1;
    b.writeUInt32LE(57600, 36);
    b.writeUInt32LE(115200, 40);
    const t = decodeTermios2(b);
    assert.deepEqual([t.iflag, t.oflag, t.cflag, t.lflag, t.line, t.ispeed, t.ospeed], [0x11, 0x22, (BOTHER | CSTOPB | CRTSCTS) >>> 0, 0x44, 7, 57600, 115200]);
    assert.deepEqual([...t.cc], Array.from({ length: 19 }, (_, i) => i + 1));
  });

  it('every 44-byte struct decodes and encodes back to the same bytes (property)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: TERMIOS2_SIZE, maxLength: TERMIOS2_SIZE }), (bytes) => {
        const b = Buffer.from(bytes);
        assert.ok(encodeTermios2(decodeTermios2(b)).equals(b));
      }),
    );
  });

  it('every termios2 encodes and decodes back to itself (property), into a reused buffer too', () => {
    const out = Buffer.alloc(TERMIOS2_SIZE, 0xaa);
    fc.assert(
      fc.property(termios, (t) => {
        assert.deepEqual(decodeTermios2(encodeTermios2(t)), { ...t });
        assert.deepEqual(decodeTermios2(encodeTermios2(t, out)), { ...t });
      }),
    );
  });

  it('the decoded control characters are a copy, not a view of the ioctl buffer', () => {
    const b = Buffer.alloc(TERMIOS2_SIZE);
    const t = decodeTermios2(b);
    b[17] = 9;
    assert.equal(t.cc[0], 0);
  });

  it('refuses a struct of any other size, and a control-character array of any other length', () => {
    for (const n of [0, 1, 36, 43, 45, 60]) {
      assert.throws(() => decodeTermios2(Buffer.alloc(n)), (e: unknown) => e instanceof ProtocolError && /struct termios2 is 44 bytes/.test(e.message), `size ${n}`);
    }
    const t = decodeTermios2(Buffer.alloc(TERMIOS2_SIZE));
    for (const n of [0, 18, 20, 32]) {
      assert.throws(() => encodeTermios2({ ...t, cc: Buffer.alloc(n) }), (e: unknown) => e instanceof ProtocolError && /19 control characters/.test(e.message), `cc ${n}`);
    }
  });
});

describe('pty: line settings in the termios', () => {
  it('reads baud (ospeed), two stop bits, RTS/CTS and XON/XOFF (both IXON and IXOFF)', () => {
    const t = decodeTermios2(Buffer.alloc(TERMIOS2_SIZE));
    assert.deepEqual(ptyLineSettings({ ...t, ospeed: 9600 }), { baudRate: 9600, stopBits: 1, flowControl: 1 });
    assert.deepEqual(ptyLineSettings({ ...t, cflag: (CSTOPB | CRTSCTS) >>> 0, ospeed: 57600 }), { baudRate: 57600, stopBits: 2, flowControl: 3 });
    assert.equal(ptyLineSettings({ ...t, iflag: IXON | IXOFF }).flowControl, 2);
    assert.equal(ptyLineSettings({ ...t, iflag: IXON }).flowControl, 1, 'IXON alone is output flow control only: not XON/XOFF both ways');
    assert.equal(ptyLineSettings({ ...t, cflag: CRTSCTS >>> 0, iflag: IXON | IXOFF }).flowControl, 3, 'RTS/CTS wins when both are set');
  });

  it('writes a standard rate as its B* code and any other as BOTHER, with the speeds as integers', () => {
    const t = decodeTermios2(Buffer.alloc(TERMIOS2_SIZE));
    const codes: Array<[number, number]> = [[0, 0], [50, 1], [9600, 0o15], [38400, 0o17], [57600, 0o10001], [115200, 0o10002], [4_000_000, 0o10017], [12345, BOTHER], [250000, BOTHER]];
    for (const [rate, code] of codes) {
      const w = withPtyLineSettings(t, { baudRate: rate, stopBits: 1, flowControl: 1 });
      assert.equal(w.cflag & CBAUD, code, `rate ${rate}`);
      assert.deepEqual([w.ispeed, w.ospeed], [rate, rate]);
    }
  });

  it('written settings read back as written, and every other bit stays (property)', () => {
    const mask = (CBAUD | CSTOPB | CRTSCTS) >>> 0;
    fc.assert(
      fc.property(termios, settings, (t, s) => {
        const w = withPtyLineSettings(t, s);
        assert.deepEqual(ptyLineSettings(w), { ...s });
        assert.equal((w.cflag & ~mask) >>> 0, (t.cflag & ~mask) >>> 0);
        assert.equal((w.iflag & ~(IXON | IXOFF)) >>> 0, (t.iflag & ~(IXON | IXOFF)) >>> 0);
        assert.deepEqual([w.oflag, w.lflag, w.line], [t.oflag, t.lflag, t.line]);
        assert.ok(w.cc.equals(t.cc));
        assert.deepEqual(decodeTermios2(encodeTermios2(w)), { ...w });
      }),
    );
  });
});
