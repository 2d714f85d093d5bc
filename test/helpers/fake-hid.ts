import { EventEmitter } from 'node:events';
import type { HidBackend, HidDeviceInfo, HidPort } from '../../agent/drivers/hid-backend';

/** A device as a test plugs it in; `collections` are its top-level collections (usage page, usage). */
export interface FakeHidSpec {
  path: string;
  vendorId: number;
  productId: number;
  serialNumber?: string;
  manufacturer?: string;
  product?: string;
  release?: number;
  /** -1 for a device that is not on USB, as hidapi reports it. */
  interface?: number;
  collections?: Array<{ usagePage: number; usage: number }>;
}

/** hidapi's messages, as node-hid passes them on (hidraw on Linux). */
const READ_ERROR_UNPLUGGED = 'could not read from HID device: hid_read_timeout: unexpected poll error (device disconnected)';

/**
 * A HID device behind a fake node-hid: what was written to it, the feature reports it answers
 * with, and input reports and unplugging driven by the test.
 */
export class FakeHidDevice {
  readonly outputReports: Buffer[] = [];
  readonly featureReportsSent: Buffer[] = [];
  /** getFeatureReport calls: [report id, length]. */
  readonly featureRequests: Array<[number, number]> = [];
  /** Calls of close() on its opened ports, including refused second ones. */
  closeCalls = 0;
  /** A stalled device refuses every transfer (EPIPE), as a USB device does a request it does not take. */
  stalled = false;
  plugged = true;
  readonly ports: FakeHidPort[] = [];
  private readonly featureReports = new Map<number, Buffer>();

  constructor(readonly spec: FakeHidSpec) {}

  /** The device's listing in node-hid's exact shape: one entry per top-level collection, absent values absent. */
  listing(): HidDeviceInfo[] {
    const s = this.spec;
    const collections = s.collections ?? [{ usagePage: 0, usage: 0 }];
    return collections.map((c) => ({
      vendorId: s.vendorId,
      productId: s.productId,
      path: s.path,
      ...(s.serialNumber !== undefined && { serialNumber: s.serialNumber }),
      ...(s.manufacturer !== undefined && { manufacturer: s.manufacturer }),
      ...(s.product !== undefined && { product: s.product }),
      release: s.release ?? 0x0100,
      interface: s.interface ?? 0,
      // node-hid leaves out a zero usage page or usage
      ...(c.usagePage !== 0 && { usagePage: c.usagePage }),
      ...(c.usage !== 0 && { usage: c.usage }),
    }));
  }

  /** The report this device answers feature-report requests for `report[0]` with. */
  setFeatureReport(report: number[]): void {
    this.featureReports.set(report[0], Buffer.from(report));
  }

  /** The device sends an input report (report id first when it numbers its reports). */
  input(report: number[]): void {
    for (const port of this.ports) port.deliver(Buffer.from(report));
  }

  /** Pulled out: the read loop of every open port fails, as hidraw's poll does. */
  unplug(): void {
    this.plugged = false;
    for (const port of this.ports) port.readFailed(READ_ERROR_UNPLUGGED);
  }

  /** The outcome of a transfer: hidapi's error (strerror of the ioctl/write) or the bytes it moved. */
  transfer(what: string, length: number): number {
    if (!this.plugged) throw new Error(`${what}: No such device`);
    if (this.stalled) throw new Error(`${what}: Broken pipe`);
    return length;
  }

  getFeature(reportId: number, length: number): Buffer {
    this.featureRequests.push([reportId, length]);
    const report = this.featureReports.get(reportId);
    if (!report) throw new Error('could not get feature report from device: Broken pipe');
    this.transfer('could not get feature report from device', length);
    return Buffer.from(report.subarray(0, length));
  }
}

/** One open of a device, like node-hid's HIDAsync. */
export class FakeHidPort extends EventEmitter implements HidPort {
  private closing = false;
  private closed = false;
  private reading = true;

  constructor(private readonly device: FakeHidDevice) {
    super();
  }

  async write(data: number[] | Buffer): Promise<number> {
    this.check();
    const length = this.device.transfer('Cannot write to hid device', data.length);
    this.device.outputReports.push(Buffer.from(data));
    return length;
  }

  async sendFeatureReport(data: number[] | Buffer): Promise<number> {
    this.check();
    const length = this.device.transfer('could not send feature report to device', data.length);
    this.device.featureReportsSent.push(Buffer.from(data));
    return length;
  }

  async getFeatureReport(reportId: number, length: number): Promise<Buffer> {
    this.check();
    if (length <= 0) throw new TypeError('Length parameter cannot be zero in getFeatureReport');
    return this.device.getFeature(reportId, length);
  }

  async getDeviceInfo(): Promise<HidDeviceInfo> {
    this.check();
    return this.device.listing()[0];
  }

  /** Like HIDAsync.close(): reports already read still come as 'data' until the native close is done; errors do not. */
  async close(): Promise<void> {
    this.device.closeCalls++;
    if (this.closing) throw new TypeError('device is already closed');
    this.closing = true;
    await new Promise((resolve) => setImmediate(resolve));
    this.closed = true;
    this.removeAllListeners();
    this.device.ports.splice(this.device.ports.indexOf(this), 1);
  }

  /** node-hid's read loop stops for good after a read error. */
  deliver(report: Buffer): void {
    if (!this.closed && this.reading) this.emit('data', report);
  }

  readFailed(message: string): void {
    if (this.closing || !this.reading) return;
    this.reading = false;
    this.emit('error', message);
  }

  private check(): void {
    if (this.closing) throw new TypeError('device has been closed');
  }
}

/** A fake node-hid: devicesAsync() and HIDAsync.open(path) over the devices a test plugged in. */
export class FakeHidBackend implements HidBackend {
  readonly devicesPlugged: FakeHidDevice[] = [];

  plug(spec: FakeHidSpec): FakeHidDevice {
    const device = new FakeHidDevice(spec);
    this.devicesPlugged.push(device);
    return device;
  }

  async devices(): Promise<HidDeviceInfo[]> {
    return this.devicesPlugged.filter((d) => d.plugged).flatMap((d) => d.listing());
  }

  async open(path: string): Promise<HidPort> {
    const device = this.devicesPlugged.find((d) => d.plugged && d.spec.path === path);
    if (!device) throw new Error(`cannot open device with path ${path}: No such file or directory`);
    const port = new FakeHidPort(device);
    device.ports.push(port);
    return port;
  }
}
