import type { Duplex } from 'node:stream';
import type { DeviceKind, SerialConfig } from '../../src/proto/types';
import type { CommandReply, DeviceCommand } from '../../src/socket-plane/device-command';
import type { DeviceEvent } from '../../src/socket-plane/device-event';

/** What a mapping asks of its device. */
export interface DeviceConfig {
  /** Line settings; only the serial-based drivers read them. */
  serial: SerialConfig | null;
  /** Driver settings (Binding.settings): each driver checks its own and refuses names it does not know. */
  settings: Readonly<Record<string, string>>;
}

/** A device as a driver found it. */
export interface DiscoveredDevice {
  path: string;
  kind: DeviceKind;
  /** Stable identity that follows the device to another port ("usb-<vid>:<pid>:<serial>"); unset: the path is its identity. */
  deviceId?: string;
  /** What it can do and how, e.g. "serial", "format=mjpeg", "channel=temp0:°C". */
  capabilities: string[];
  /** What the driver could tell about it (manufacturer, product, chip label …). */
  labels: Record<string, string>;
}

export type DeviceEventListener = (event: DeviceEvent) => void;

/**
 * A stream whose chunks are whole media frames (a capture through ffmpeg): each session gets
 * `header` before its first frame, and a session that is not reading loses whole frames instead
 * of pausing the device for everyone.
 */
export interface FramedStream {
  /** The container header every consumer needs first; undefined until the capture wrote it. */
  readonly header: Buffer | undefined;
}

/**
 * An open device. `stream` carries its bytes both ways with the usual Duplex backpressure
 * (write() returning false until 'drain'); a device without a byte stream (GPIO, a sensor, HID)
 * has one that never produces data and refuses writes (see ByteLessStream). The stream emits
 * 'close' when the device is closed or goes away (unplugged, I/O error) and 'error' on a
 * failure; after either it is dead.
 */
export interface DeviceHandle {
  readonly path: string;
  readonly stream: Duplex;
  /** Set when the stream's chunks are whole frames (see FramedStream). */
  readonly frames?: FramedStream;
  /** Sets the one listener of the device's events (modem lines, edges, input reports, samples …). */
  onEvent(listener: DeviceEventListener): void;
  /** Applies a changed configuration to the open device; rejects with the device's reason if it refuses. */
  update(config: DeviceConfig): Promise<void>;
  /** Runs a command; rejects with UnsupportedError for an operation this kind of device has not. */
  execute(command: DeviceCommand): Promise<CommandReply>;
  /** The configuration the device has now, read back from it where the driver can (strings, for the endpoint). */
  configuration(): Promise<Record<string, string>>;
  /** Closes the device and releases it (and its lock) for the next open. */
  close(): Promise<void>;
}

/**
 * One interface over every kind of device and every way of reaching it, real or simulated, the
 * way serialport has one binding interface over its platform and mock bindings.
 */
export interface DeviceDriver {
  readonly kind: DeviceKind;
  /** Throws a ValidationError naming what it refuses; called before open and on every pushed change. */
  validate(config: DeviceConfig): void;
  /** Opens `path`; rejects with a DeviceError (or the ValidationError of validate()). */
  open(path: string, config: DeviceConfig): Promise<DeviceHandle>;
  /**
   * The devices the driver's own listing shows (SerialPort.list(), HID.devices(), gpiodetect, the
   * IIO sysfs directory …), with identity where it has it; [] when it has none. Rejects when the
   * listing itself fails (a sysfs it cannot read, say): the watcher then identifies devices by path.
   */
  list(): Promise<DiscoveredDevice[]>;
}
