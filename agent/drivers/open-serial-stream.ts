import type { BindingInterface } from '@serialport/bindings-interface';
import { SerialPortStream } from '@serialport/stream';
import { DeviceError, errorMessage } from '../../src/errors';
import { pollForEveryWaiter } from './poller-workaround';
import type { SerialPortOptions } from './serial-options';

/**
 * Opens `path` as a SerialPortStream over `binding`, locked (flock, which works on ptys too)
 * against other processes, with the bindings-cpp poller workaround; rejects with a DeviceError.
 */
export function openSerialStream(binding: BindingInterface, path: string, options: SerialPortOptions): Promise<SerialPortStream> {
  let stream: SerialPortStream;
  try {
    stream = new SerialPortStream({ binding, path, ...options, lock: true, autoOpen: false });
  } catch (err) {
    return Promise.reject(new DeviceError(`cannot open ${path}: ${errorMessage(err)}`, { cause: err }));
  }
  return new Promise((resolve, reject) => {
    stream.open((err) => {
      if (err) {
        stream.destroy();
        reject(new DeviceError(`cannot open ${path}: ${err.message}`, { cause: err }));
        return;
      }
      pollForEveryWaiter(stream.port);
      resolve(stream);
    });
  });
}
