import type { Duplex } from 'node:stream';
import type { PortInfo } from '@serialport/bindings-interface';
import type { SerialConfig } from '../../src/proto/types';

/**
 * An open device. `stream` carries its bytes both ways with the usual Duplex backpressure
 * (write() returning false until 'drain'). The stream emits 'close' when the device is closed
 * or goes away (unplugged, I/O error) and 'error' on a failure; after either it is dead.
 */
export interface DeviceHandle {
  readonly path: string;
  readonly stream: Duplex;
  /** Applies a changed configuration to the open device. */
  update(config: SerialConfig | null): Promise<void>;
  /** Closes the device and releases it (and its lock) for the next open. */
  close(): Promise<void>;
}

/**
 * One interface over every way of reaching a device, real or simulated, the way serialport has
 * one binding interface over its platform and mock bindings.
 */
export interface DeviceDriver {
  /** Opens `path` with `config` (null or unset fields: the defaults); rejects with a DeviceError. */
  open(path: string, config: SerialConfig | null): Promise<DeviceHandle>;
  /** The ports this driver knows, with USB identity where it has it. */
  list(): Promise<PortInfo[]>;
}
