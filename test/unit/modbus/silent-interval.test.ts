import { strict as assert } from 'node:assert';
import { ValidationError } from '../../../src/errors';
import { rtuTiming } from '../../../src/modbus/silent-interval';
import type { SerialConfig } from '../../../src/proto/types';

const line = (baudRate: number, parity: SerialConfig['parity'] = 'PARITY_NONE', stopBits: SerialConfig['stopBits'] = 'STOP_BITS_ONE'): SerialConfig => ({
  baudRate,
  dataBits: 8,
  parity,
  stopBits,
  flowControl: 'FLOW_CONTROL_NONE',
});

describe('modbus: silent interval', () => {
  it('is 3.5 characters at the line settings up to 19200 baud', () => {
    const t = rtuTiming(line(9600, 'PARITY_EVEN'), 9600);
    assert.ok(Math.abs(t.charMs - 11 / 9.6) < 1e-9);
    assert.ok(Math.abs(t.silentMs - 3.5 * (11 / 9.6)) < 1e-9);
    // 8N1 is 10 bits a character.
    assert.ok(Math.abs(rtuTiming(line(9600), 9600).charMs - 10 / 9.6) < 1e-9);
    assert.ok(Math.abs(rtuTiming(line(19200, 'PARITY_NONE', 'STOP_BITS_TWO'), 9600).charMs - 11 / 19.2) < 1e-9);
  });

  it('is fixed at 1.75 ms above 19200 baud', () => {
    const t = rtuTiming(line(115200), 9600);
    assert.equal(t.silentMs, 1.75);
    assert.ok(Math.abs(t.charMs - 10 / 115.2) < 1e-9);
  });

  it('takes the fallback baud for an unset one and refuses a baud that is not positive', () => {
    assert.ok(Math.abs(rtuTiming(null, 9600).charMs - 11 / 9.6) < 1e-9);
    assert.throws(() => rtuTiming(null, 0), ValidationError);
  });
});
