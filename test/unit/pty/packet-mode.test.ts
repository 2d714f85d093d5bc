import { strict as assert } from 'node:assert';
import fc from 'fast-check';
import { packetFlagNames, PacketStatus } from '../../../src/pty/packet-mode';

describe('pty: TIOCPKT status byte', () => {
  it('names the kernel flags (include/uapi/asm-generic/ioctls.h values)', () => {
    assert.deepEqual(packetFlagNames(0), []);
    assert.deepEqual(packetFlagNames(0x01), ['flushRead']);
    assert.deepEqual(packetFlagNames(0x02), ['flushWrite']);
    assert.deepEqual(packetFlagNames(0x03), ['flushRead', 'flushWrite']);
    assert.deepEqual(packetFlagNames(0x40), ['ioctl']);
    assert.deepEqual(packetFlagNames(0x04 | 0x08 | 0x10 | 0x20), ['stop', 'start', 'doStop', 'noStop']);
  });

  it('an unknown bit (0x80) has no name, and the known ones around it still do', () => {
    assert.deepEqual(packetFlagNames(0x80), []);
    assert.deepEqual(packetFlagNames(0xc1), ['flushRead', 'ioctl']);
  });

  it('every status byte: the names are exactly its known bits, each once (property)', () => {
    const known = Object.values(PacketStatus).reduce<number>((a, b) => a | b, 0);
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 255 }), (status) => {
        const names = packetFlagNames(status);
        assert.equal(new Set(names).size, names.length);
        const bits = names.reduce((a, n) => a | PacketStatus[n as keyof typeof PacketStatus], 0);
        assert.equal(bits, status & known);
      }),
    );
  });
});
