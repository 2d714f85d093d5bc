import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

/** Attributes of a directory in the fake tree: name → file content (written as given, newline included). */
export type Attributes = Readonly<Record<string, string>>;

/**
 * A sysfs-shaped tree in a temp dir for the tty listing, laid out as the kernel does:
 * devices/…/<usb device>/<interface>/[<usb-serial port>/]tty/<name>, and class/tty/<name> with a
 * `device` link into the device tree.
 */
export class FakeSysfsTty {
  readonly root = fs.mkdtempSync(path.join(os.tmpdir(), 'dm-sysfs-tty-'));

  /** Writes `attributes` into devices/`rel` (created) and returns its absolute path. */
  device(rel: string, attributes: Attributes = {}): string {
    const dir = path.join(this.root, 'devices', rel);
    fs.mkdirSync(dir, { recursive: true });
    for (const [name, value] of Object.entries(attributes)) fs.writeFileSync(path.join(dir, name), value);
    return dir;
  }

  /** A USB device at devices/pci0000:00/usb1/`bus` with the usual attributes. */
  usb(bus: string, attributes: Attributes): string {
    return this.device(path.join('pci0000:00', 'usb1', bus), attributes);
  }

  /** class/tty/`name`, its `device` link to `deviceDir` (none: a virtual tty), and its own attributes. */
  tty(name: string, deviceDir: string | undefined, attributes: Attributes = {}): void {
    const dir = path.join(this.root, 'class', 'tty', name);
    fs.mkdirSync(dir, { recursive: true });
    if (deviceDir) fs.symlinkSync(path.relative(dir, deviceDir), path.join(dir, 'device'));
    for (const [attr, value] of Object.entries(attributes)) fs.writeFileSync(path.join(dir, attr), value);
  }

  remove(): void {
    fs.rmSync(this.root, { recursive: true, force: true });
  }
}

/** A USB device's identity attributes as the kernel writes them. */
export function usbAttributes(vendor: string, product: string, serial?: string, extra: Attributes = {}): Attributes {
  return { idVendor: `${vendor}\n`, idProduct: `${product}\n`, ...(serial !== undefined ? { serial: `${serial}\n` } : {}), ...extra };
}
