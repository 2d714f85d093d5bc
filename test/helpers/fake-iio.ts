import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

/**
 * A sysfs-shaped IIO tree in a temp dir: the device directories live under devices/…, and
 * bus/iio/devices/iio:deviceN are symlinks to them, as on a real system. Attribute files hold
 * what the kernel prints: the value and a newline.
 */
export class FakeIio {
  /** What the driver takes as its sysfs root (the stand-in for /sys/bus/iio/devices). */
  readonly root: string;

  private constructor(private readonly base: string) {
    this.root = path.join(base, 'bus', 'iio', 'devices');
    fs.mkdirSync(this.root, { recursive: true });
  }

  static create(): FakeIio {
    return new FakeIio(fs.mkdtempSync(path.join(os.tmpdir(), 'fake-iio-')));
  }

  /** Adds iio:device<index> named `name` with `attributes` (file name → value); returns its path under the root. */
  addDevice(index: number, name: string, attributes: Record<string, string | number>): string {
    const dir = this.deviceDir(index);
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, 'name'), `${name}\n`);
    fs.writeFileSync(path.join(dir, 'uevent'), `OF_NAME=${name}\n`);
    for (const [file, value] of Object.entries(attributes)) this.write(index, file, value);
    const link = this.devicePath(index);
    fs.symlinkSync(path.relative(this.root, dir), link);
    return link;
  }

  /** Writes an attribute as the kernel presents it; a string is written as is (for malformed files). */
  write(index: number, file: string, value: string | number): void {
    fs.writeFileSync(path.join(this.deviceDir(index), file), typeof value === 'number' ? `${value}\n` : value);
  }

  unlink(index: number, file: string): void {
    fs.rmSync(path.join(this.deviceDir(index), file));
  }

  /** Unbinds a device: its directory and its link go, as sysfs removes them. */
  removeDevice(index: number): void {
    fs.rmSync(this.devicePath(index));
    fs.rmSync(this.deviceDir(index), { recursive: true });
  }

  devicePath(index: number): string {
    return path.join(this.root, `iio:device${index}`);
  }

  cleanup(): void {
    fs.rmSync(this.base, { recursive: true, force: true });
  }

  private deviceDir(index: number): string {
    return path.join(this.base, 'devices', 'platform', 'soc', 'i2c-1', `1-00${40 + index}`, `iio:device${index}`);
  }
}
