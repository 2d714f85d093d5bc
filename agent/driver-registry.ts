import { autoDetect } from '@serialport/bindings-cpp';
import { errorMessage, UnsupportedError } from '../src/errors';
import type { DeviceKind } from '../src/proto/types';
import type { IdentifiedDevice } from './device-inventory';
import type { DeviceDriver, DiscoveredDevice } from './drivers/device-driver';
import { GpioDriver } from './drivers/gpio-driver';
import { HidDriver } from './drivers/hid-driver';
import { ScpiDriver } from './drivers/scpi-driver';
import { SensorDriver } from './drivers/sensor-driver';
import type { CaptureSource } from './drivers/media/ffmpeg-args';
import { MediaDriver } from './drivers/media/media-driver';
import { SerialDriver } from './drivers/serial-driver';
import { SIMULATED_PREFIX, SimulatedModemBinding } from './drivers/simulated-modem';
import { listSysfsSerialPorts } from './drivers/sysfs-serial-ports';
import { readTermios } from './drivers/termios-readback';

export interface DriverRegistryOptions {
  /** Names of the simulated modems, e.g. ['modem0'] → sim:modem0. */
  simulatedModems: readonly string[];
  /** Where cameras and microphones are captured from (default: the devices; lavfi: ffmpeg's test sources). */
  captureSource?: CaptureSource;
  /** Where the serial listing reads sysfs and names the ports (default /sys and /dev): a container's mount of the host's. */
  serialListingRoots?: { sys: string; dev: string };
}

/** One driver's state for /config_dump: loaded, or why not. */
export interface DriverStatus {
  kind: DeviceKind;
  loaded: boolean;
  /** Devices its listing showed at start. */
  devices: number;
  error?: string;
}

/**
 * The agent's drivers, one per kind of device, each the real one for its kind; simulated
 * devices (path prefix "sim:") go to the simulated binding behind the same serial driver.
 */
export class DriverRegistry {
  readonly simulatedModems: SimulatedModemBinding;
  private readonly byKind = new Map<DeviceKind, DeviceDriver>();
  private readonly simulated: SerialDriver;

  constructor(options: DriverRegistryOptions) {
    this.simulatedModems = new SimulatedModemBinding(options.simulatedModems);
    const sim = this.simulatedModems;
    this.simulated = new SerialDriver(sim, { readBack: (path) => sim.lineSettings(path) });
    // Listed from sysfs, not with serialport's list() (which spawns udevadm): see docs/devices.md.
    const roots = options.serialListingRoots;
    this.register(new SerialDriver(autoDetect(), { readBack: readTermios, list: () => (roots ? listSysfsSerialPorts(roots.sys, roots.dev) : listSysfsSerialPorts()) }));
    this.register(new HidDriver());
    this.register(new GpioDriver());
    this.register(new SensorDriver());
    this.register(new ScpiDriver());
    const source = options.captureSource ?? 'device';
    this.register(new MediaDriver({ kind: 'DEVICE_KIND_VIDEO', source }));
    this.register(new MediaDriver({ kind: 'DEVICE_KIND_AUDIO', source }));
  }

  private register(driver: DeviceDriver): void {
    this.byKind.set(driver.kind, driver);
  }

  /** The driver that opens `device`; undefined for a kind no driver handles. */
  forDevice(device: IdentifiedDevice): DeviceDriver | undefined {
    if (device.path.startsWith(SIMULATED_PREFIX)) return this.simulated;
    return this.byKind.get(device.kind);
  }

  /** The driver that opens `device`; throws for a kind no driver handles. */
  require(device: IdentifiedDevice): DeviceDriver {
    const driver = this.forDevice(device);
    if (!driver) throw new UnsupportedError(`no driver for ${device.kind} devices (${device.path})`);
    return driver;
  }

  /** The listing of a kind's driver; [] for a kind without one. */
  list(kind: DeviceKind): Promise<DiscoveredDevice[]> {
    return this.byKind.get(kind)?.list() ?? Promise.resolve([]);
  }

  /** Asks every driver for its listing once, so a driver that cannot load says so at start. */
  async status(): Promise<DriverStatus[]> {
    return Promise.all(
      [...this.byKind.values()].map(async (d): Promise<DriverStatus> => {
        try {
          return { kind: d.kind, loaded: true, devices: (await d.list()).length };
        } catch (err) {
          return { kind: d.kind, loaded: false, devices: 0, error: errorMessage(err) };
        }
      }),
    );
  }
}
