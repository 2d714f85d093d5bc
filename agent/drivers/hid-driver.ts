import { DeviceError, DeviceMeshError, errorMessage, UnsupportedError, ValidationError } from '../../src/errors';
import type { DeviceKind } from '../../src/proto/types';
import { type CommandReply, CommandOp, type DeviceCommand } from '../../src/socket-plane/device-command';
import { type DeviceEvent, DeviceEventType, eventTimestamp } from '../../src/socket-plane/device-event';
import { ByteLessStream } from './byte-less-stream';
import type { DeviceConfig, DeviceDriver, DeviceEventListener, DeviceHandle, DiscoveredDevice } from './device-driver';
import { DriverSettings } from './driver-settings';
import { type HidBackend, type HidDeviceInfo, type HidPort, nodeHidBackend } from './hid-backend';

export interface HidSettings {
  /** The device's reports start with a report id: input events carry it as their value. */
  numberedReports: boolean;
}

/** What the driver does with every HID device; the report descriptor, which would tell more, is not read. */
const CAPABILITIES = ['hid', 'input-reports', 'output-reports', 'feature-reports'];
/** HidGetFeature's length when its target is "". */
const DEFAULT_FEATURE_LENGTH = 64;
/** The kernel's HID_MAX_BUFFER_SIZE: no report is longer. */
const MAX_REPORT_LENGTH = 16384;
const EMPTY = Buffer.alloc(0);

export function hidSettings(config: DeviceConfig): HidSettings {
  const settings = new DriverSettings('hid', config.settings);
  settings.onlyKnown(['numberedReports']);
  return { numberedReports: settings.boolean('numberedReports', false) };
}

const hex4 = (n: number): string => n.toString(16).padStart(4, '0');
const usageHex = (n: number): string => `0x${hex4(n)}`;

/** Keeps the ids that only one device has: an identity shared by two is none. */
function uniqueIds(ids: Array<string | undefined>): Array<string | undefined> {
  return ids.map((id) => (id && ids.indexOf(id) === ids.lastIndexOf(id) ? id : undefined));
}

/**
 * node-hid lists a device once per top-level collection, each time with the same path: one
 * DiscoveredDevice per path. The identity is usb-<vid>:<pid>:<serial>, as for serial devices;
 * the interfaces of a composite device share a serial number, so they get ":if<interface>" too.
 * Devices that still share an identity (two with the same fake serial) have none but their path.
 */
export function discoveredHidDevices(infos: readonly HidDeviceInfo[]): DiscoveredDevice[] {
  const byPath = new Map<string, HidDeviceInfo[]>();
  for (const info of infos) {
    if (info.path === undefined) continue; // nothing to open
    const group = byPath.get(info.path);
    if (group) group.push(info);
    else byPath.set(info.path, [info]);
  }
  const groups = [...byPath];
  const usbIds = groups.map(([, [d]]) => d.serialNumber && `usb-${hex4(d.vendorId)}:${hex4(d.productId)}:${d.serialNumber}`);
  const single = uniqueIds(usbIds);
  const ids = uniqueIds(usbIds.map((id, i) => single[i] ?? (id && `${id}:if${groups[i][1][0].interface}`)));
  return groups.map(([path, group], i) => {
    const first = group[0];
    const deviceId = ids[i];
    const labels: Record<string, string> = { vendorId: hex4(first.vendorId), productId: hex4(first.productId) };
    if (first.manufacturer) labels.manufacturer = first.manufacturer;
    if (first.product) labels.product = first.product;
    if (first.serialNumber) labels.serialNumber = first.serialNumber;
    if (first.usagePage !== undefined) labels.usagePage = usageHex(first.usagePage);
    if (first.usage !== undefined) labels.usage = usageHex(first.usage);
    if (first.interface >= 0) labels.interface = String(first.interface); // -1: not USB (Bluetooth, I2C)
    const usages = group.map((c) => `usage=${usageHex(c.usagePage ?? 0)}:${usageHex(c.usage ?? 0)}`);
    const device: DiscoveredDevice = { path, kind: 'DEVICE_KIND_HID', capabilities: [...CAPABILITIES, ...usages], labels };
    if (deviceId) device.deviceId = deviceId;
    return device;
  });
}

/** The USB HID driver, over node-hid (`nodeHidBackend`, the default) or a fake backend. */
export class HidDriver implements DeviceDriver {
  readonly kind: DeviceKind = 'DEVICE_KIND_HID';

  constructor(private readonly backend: HidBackend = nodeHidBackend) {}

  validate(config: DeviceConfig): void {
    hidSettings(config);
  }

  async list(): Promise<DiscoveredDevice[]> {
    return discoveredHidDevices(await nodeHid(this.backend.devices(), 'cannot list HID devices'));
  }

  async open(path: string, config: DeviceConfig): Promise<DeviceHandle> {
    const settings = hidSettings(config);
    return new HidHandle(path, await nodeHid(this.backend.open(path), `cannot open ${path}`), settings);
  }
}

/** Our own typed errors (UnavailableError: node-hid did not load) go through; node-hid's become DeviceErrors. */
async function nodeHid<T>(pending: Promise<T>, what: string): Promise<T> {
  try {
    return await pending;
  } catch (err) {
    if (err instanceof DeviceMeshError) throw err;
    throw new DeviceError(`${what}: ${errorMessage(err)}`, { cause: err });
  }
}

/**
 * An open HID device: input reports are events, output and feature reports are commands. An
 * unplugged device is reported by node-hid's read loop as 'error'; the handle turns that into a
 * DeviceError event and destroys its stream, so the session host sees 'close'.
 */
class HidHandle implements DeviceHandle {
  readonly stream: ByteLessStream;
  private listener: DeviceEventListener | undefined;
  /** Set once the node-hid device is being closed: by close() or because it went away. */
  private portClosed: Promise<void> | undefined;

  constructor(
    readonly path: string,
    private readonly port: HidPort,
    private settings: HidSettings,
  ) {
    this.stream = new ByteLessStream(`HID device ${path}`);
    port.on('data', (report) => {
      if (this.portClosed) return;
      const value = this.settings.numberedReports ? (report[0] ?? 0) : 0;
      this.emit({ type: DeviceEventType.HidInputReport, timestampMs: eventTimestamp(), source: '', value, data: report });
    });
    port.on('error', (err) => this.gone(errorMessage(err)));
  }

  onEvent(listener: DeviceEventListener): void {
    this.listener = listener;
  }

  async update(config: DeviceConfig): Promise<void> {
    this.settings = hidSettings(config);
  }

  async execute(command: DeviceCommand): Promise<CommandReply> {
    if (this.portClosed) throw new DeviceError(`${this.path}: device is closed`);
    switch (command.op) {
      case CommandOp.HidWrite:
        return { value: await this.device('cannot write output report', this.port.write(report(command))), data: EMPTY };
      case CommandOp.HidSendFeature:
        return { value: await this.device('cannot send feature report', this.port.sendFeatureReport(report(command))), data: EMPTY };
      case CommandOp.HidGetFeature: {
        const reply = await this.device('cannot get feature report', this.port.getFeatureReport(reportId(command), featureLength(command)));
        return { value: reply.length, data: reply };
      }
      default:
        throw new UnsupportedError(`${CommandOp[command.op] ?? `command op ${command.op}`} is not a HID command`);
    }
  }

  async configuration(): Promise<Record<string, string>> {
    const info = await this.device('cannot read device info', this.port.getDeviceInfo());
    const config: Record<string, string> = { vendorId: hex4(info.vendorId), productId: hex4(info.productId) };
    if (info.serialNumber) config.serialNumber = info.serialNumber;
    config.numberedReports = String(this.settings.numberedReports);
    return config;
  }

  close(): Promise<void> {
    this.stream.destroy();
    this.portClosed ??= this.port.close().catch((err: unknown) => {
      throw new DeviceError(`${this.path}: close failed: ${errorMessage(err)}`, { cause: err });
    });
    return this.portClosed;
  }

  private gone(message: string): void {
    if (this.portClosed) return;
    // Releasing the dead device's handle is all that is left to do; its failing changes nothing.
    this.portClosed = this.port.close().catch(() => undefined);
    const error = new DeviceError(`${this.path}: ${message}`);
    this.emit({ type: DeviceEventType.DeviceError, timestampMs: eventTimestamp(), source: '', value: 0, data: Buffer.from(message) });
    this.stream.destroy(error);
  }

  private emit(event: DeviceEvent): void {
    this.listener?.(event);
  }

  private device<T>(what: string, pending: Promise<T>): Promise<T> {
    return nodeHid(pending, `${this.path}: ${what}`);
  }
}

/** An output or feature report: report id first (0 on a device without numbered reports). */
function report(command: DeviceCommand): Buffer {
  const length = command.data.length;
  if (length === 0 || length > MAX_REPORT_LENGTH + 1) {
    throw new ValidationError('command.data', `is ${length} bytes, not a report id followed by at most ${MAX_REPORT_LENGTH} bytes`);
  }
  return command.data;
}

function reportId(command: DeviceCommand): number {
  if (!Number.isInteger(command.value) || command.value < 0 || command.value > 255) {
    throw new ValidationError('command.value', `${command.value} is not a report id (0 to 255)`);
  }
  return command.value;
}

function featureLength(command: DeviceCommand): number {
  if (command.target === '') return DEFAULT_FEATURE_LENGTH;
  const length = /^\d{1,5}$/.test(command.target) ? Number(command.target) : NaN;
  if (!(length >= 1 && length <= MAX_REPORT_LENGTH)) {
    const expected = `1 to ${MAX_REPORT_LENGTH}, "" for ${DEFAULT_FEATURE_LENGTH}`;
    throw new ValidationError('command.target', `"${command.target}" is not a report length (${expected})`);
  }
  return length;
}
