import { ValidationError } from '../errors';
import type { SerialConfig } from '../proto/types';

/** Above 19200 baud the standard fixes the silent interval instead of scaling it (Modbus over serial line, 2.5.1.1). */
const FIXED_T35_MS = 1.75;
const FIXED_ABOVE_BAUD = 19_200;

/** The bus timing of a Modbus RTU line: one character's time and the 3.5-character silent interval, in ms. */
export interface RtuTiming {
  charMs: number;
  silentMs: number;
}

/**
 * A character is a start bit, the data bits, a parity bit unless none, and the stop bits, at the
 * line's baud rate. Unset fields are the Modbus defaults: 8 data bits, even parity, 1 stop bit
 * (11 bits a character either way).
 */
export function rtuTiming(serial: SerialConfig | null, fallbackBaud: number): RtuTiming {
  const baud = serial?.baudRate || fallbackBaud;
  if (!(baud > 0)) throw new ValidationError('serial.baudRate', `${baud} is not a positive baud rate`);
  const data = serial?.dataBits || 8;
  const parity = serial?.parity === 'PARITY_NONE' ? 0 : 1;
  const stopBits = serial?.stopBits;
  const stop = stopBits === 'STOP_BITS_TWO' ? 2 : stopBits === 'STOP_BITS_ONE_POINT_FIVE' ? 1.5 : 1;
  const charMs = ((1 + data + parity + stop) * 1000) / baud;
  return { charMs, silentMs: baud > FIXED_ABOVE_BAUD ? FIXED_T35_MS : 3.5 * charMs };
}
