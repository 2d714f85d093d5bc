import { ValidationError } from '../../src/errors';
import type { SerialConfig } from '../../src/proto/types';

/** What a line runs at when the configuration leaves it unset: the power-on default of most devices. */
export const DEFAULT_BAUD_RATE = 9600;

/** A SerialConfig in serialport's terms. */
export interface SerialPortOptions {
  baudRate: number;
  dataBits: 5 | 6 | 7 | 8;
  parity: 'none' | 'even' | 'odd' | 'mark' | 'space';
  stopBits: 1 | 1.5 | 2;
  rtscts: boolean;
  xon: boolean;
  xoff: boolean;
}

const PARITY: Record<SerialConfig['parity'], SerialPortOptions['parity']> = {
  PARITY_UNSPECIFIED: 'none',
  PARITY_NONE: 'none',
  PARITY_EVEN: 'even',
  PARITY_ODD: 'odd',
  PARITY_MARK: 'mark',
  PARITY_SPACE: 'space',
};

const STOP_BITS: Record<SerialConfig['stopBits'], SerialPortOptions['stopBits']> = {
  STOP_BITS_UNSPECIFIED: 1,
  STOP_BITS_ONE: 1,
  STOP_BITS_ONE_POINT_FIVE: 1.5,
  STOP_BITS_TWO: 2,
};

/** Settings serialport can only apply when it opens the port. */
export const REOPEN_FIELDS = ['dataBits', 'parity', 'stopBits', 'rtscts', 'xon', 'xoff'] as const;

/** Maps a SerialConfig (null or unset fields: defaults) to serialport's open options. */
export function serialPortOptions(config: SerialConfig | null): SerialPortOptions {
  const dataBits = config?.dataBits || 8;
  if (dataBits !== 5 && dataBits !== 6 && dataBits !== 7 && dataBits !== 8) {
    throw new ValidationError('serial.dataBits', `${dataBits} is not one of 5, 6, 7, 8`);
  }
  const parity = PARITY[config?.parity ?? 'PARITY_UNSPECIFIED'];
  const stopBits = STOP_BITS[config?.stopBits ?? 'STOP_BITS_UNSPECIFIED'];
  if (parity === undefined || stopBits === undefined) {
    throw new ValidationError('serial', `unknown parity ${String(config?.parity)} or stop bits ${String(config?.stopBits)}`);
  }
  const flow = config?.flowControl ?? 'FLOW_CONTROL_UNSPECIFIED';
  return {
    baudRate: config?.baudRate || DEFAULT_BAUD_RATE,
    dataBits,
    parity,
    stopBits,
    rtscts: flow === 'FLOW_CONTROL_RTSCTS',
    xon: flow === 'FLOW_CONTROL_XONXOFF',
    xoff: flow === 'FLOW_CONTROL_XONXOFF',
  };
}
