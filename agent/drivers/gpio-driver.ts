import { DeviceError } from '../../src/errors';
import type { DeviceKind } from '../../src/proto/types';
import type { DeviceConfig, DeviceDriver, DeviceHandle, DiscoveredDevice } from './device-driver';
import { GpioChipHandle } from './gpio-chip-handle';
import { parseGpioSettings } from './gpio-settings';
import type { GpioChipLines } from './gpiod-output';
import { GpiodTools } from './gpiod-tools';

export interface GpioDriverOptions {
  /** Directory of gpiodetect, gpioinfo, gpioget, gpioset and gpiomon; unset: found on PATH. */
  toolDir?: string;
}

/** Named lines reported as capabilities, at most: a 200-line SoC chip would flood the register. */
const MAX_LINE_CAPABILITIES = 32;

/**
 * GPIO chips (/dev/gpiochipN) through the libgpiod command-line tools (v1.6 or v2). One device is one
 * chip; the mapping's settings pick its lines and their direction, edges, bias and polarity.
 */
export class GpioDriver implements DeviceDriver {
  readonly kind: DeviceKind = 'DEVICE_KIND_GPIO';
  private readonly tools: GpiodTools;
  /** Open chips: a second open would fight the first over the lines. */
  private readonly opened = new Set<string>();

  constructor(options: GpioDriverOptions = {}) {
    this.tools = new GpiodTools(options.toolDir);
  }

  validate(config: DeviceConfig): void {
    parseGpioSettings(config.settings);
  }

  async open(path: string, config: DeviceConfig): Promise<DeviceHandle> {
    this.validate(config);
    if (this.opened.has(path)) throw new DeviceError(`${path} is already open`);
    this.opened.add(path);
    const handle = new GpioChipHandle(path, this.tools, () => this.opened.delete(path));
    try {
      await handle.update(config);
    } catch (err) {
      await handle.close();
      throw err;
    }
    return handle;
  }

  async list(): Promise<DiscoveredDevice[]> {
    const { chips, denied } = await this.tools.detect();
    let lines: GpioChipLines[] = [];
    if (chips.length > 0) {
      try {
        lines = await this.tools.info(chips.map((c) => c.name));
      } catch {
        // A chip gone between the two calls: the chips are still worth listing, without line names.
        lines = [];
      }
    }
    const devices: DiscoveredDevice[] = chips.map((chip) => {
      const named = (lines.find((l) => l.name === chip.name)?.lines ?? []).filter((l) => l.name !== null);
      return {
        path: `/dev/${chip.name}`,
        kind: this.kind,
        capabilities: [
          'gpio',
          `lines=${chip.lines}`,
          ...named.slice(0, MAX_LINE_CAPABILITIES).map((l) => `line=${l.offset}:${l.name}`),
        ],
        labels: { label: chip.label, lines: String(chip.lines), namedLines: String(named.length) },
      };
    });
    for (const name of denied) {
      devices.push({ path: `/dev/${name}`, kind: this.kind, capabilities: ['gpio'], labels: { access: 'permission denied' } });
    }
    return devices;
  }
}
