import { promises as fsp } from 'node:fs';
import { DeviceError, errorMessage } from '../../src/errors';

/**
 * The names in a directory where a driver's devices appear (/dev, /dev/snd, a sysfs class):
 * [] when it does not exist (no such subsystem on this machine: no devices, not a failure).
 */
export async function deviceDirectoryEntries(dir: string): Promise<string[]> {
  try {
    return await fsp.readdir(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw new DeviceError(`cannot list ${dir}: ${errorMessage(err)}`, { cause: err });
  }
}
