import type { SerialPortOptions } from '../../agent/drivers/serial-options';

/**
 * The line every path opens its pty end with. A pty ignores the baud rate (bytes move as fast as
 * the processes on both ends go), so 115200 8N1 only has to be a rate every opener accepts.
 */
export const BAUD_RATE = 115200;

export const LINE: SerialPortOptions = {
  baudRate: BAUD_RATE,
  dataBits: 8,
  parity: 'none',
  stopBits: 1,
  rtscts: false,
  xon: false,
  xoff: false,
};
