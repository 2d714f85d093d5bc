import { promises as fsp } from 'node:fs';
import { DeviceError, errorMessage } from '../../src/errors';

/**
 * A one-line sysfs attribute (idVendor, serial, …) without its newline; undefined when the device
 * has none. A file that holds more than one line or control characters is no attribute: a
 * DeviceError naming the file.
 */
export async function readSysfsAttribute(file: string): Promise<string | undefined> {
  let text: string;
  try {
    text = await fsp.readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new DeviceError(`cannot read ${file}: ${errorMessage(err)}`, { cause: err });
  }
  const value = text.endsWith('\n') ? text.slice(0, -1) : text;
  if (/[\x00-\x1f\x7f]/.test(value)) throw new DeviceError(`${file}: not a one-line attribute`);
  return value;
}
