import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import type { PortInfo } from '@serialport/bindings-interface';
import { errorMessage } from '../../src/errors';
import { deviceDirectoryEntries } from './device-directory';
import { readSysfsAttribute } from './sysfs-attribute';

/** A serial port as a listing finds it: serialport's PortInfo, and what else sysfs tells. */
export interface SerialPortListing extends PortInfo {
  product?: string;
  /** What tells this port from the other ports of its USB device ("if01", "if00.1"); unset on a one-port device. */
  usbPort?: string;
  /** Why a port on a USB device has no stable identity (a malformed attribute, a twin): it goes by its path. */
  identityError?: string;
}

/** The USB facts of a tty, as read from sysfs (unchecked). */
export interface SysfsUsbFacts {
  /** The USB device's directory: the ttys with the same one are ports of one device. */
  device: string;
  idVendor?: string;
  idProduct?: string;
  serial?: string;
  manufacturer?: string;
  product?: string;
  /** Of the USB interface the tty hangs off. */
  bInterfaceNumber?: string;
  /** usb-serial's number of the port within its interface (a multi-port chip on one interface). */
  portNumber?: string;
}

/** What sysfs has of one tty with a device behind it. */
export interface SysfsTty {
  name: string;
  /** The tty's `type` (8250-style UARTs): "0" is a port slot the kernel made with no UART behind it. */
  uartType?: string;
  usb?: SysfsUsbFacts;
  /** Why its attributes could not be read. */
  readError?: string;
}

const HEX4 = /^[0-9a-fA-F]{4}$/;
const HEX2 = /^[0-9a-fA-F]{2}$/;
const DECIMAL = /^\d+$/;
/** Deeper than any real USB topology (7 tiers of hubs); bounds the walk on a looping tree. */
const MAX_WALK = 32;

/**
 * The serial ports among `ttys` (pure): every tty with a device behind it but an empty 8250 slot,
 * with its USB identity where it has one. The ports of one multi-port USB device get `usbPort`
 * (interface, then port number) so their ids differ; a malformed attribute, or ports whose ids
 * would still be the same (two devices with one serial number), get `identityError` instead.
 */
export function serialPortsFromSysfs(ttys: readonly SysfsTty[], devRoot = '/dev'): SerialPortListing[] {
  const ports = ttys.filter((t) => t.uartType !== '0');
  const siblings = new Map<string, SysfsUsbFacts[]>();
  for (const t of ports) if (t.usb) siblings.set(t.usb.device, [...(siblings.get(t.usb.device) ?? []), t.usb]);
  const listed = ports.map((t) => describe(t, t.usb ? (siblings.get(t.usb.device) ?? []) : [], devRoot));
  const idCount = new Map<string, number>();
  for (const p of listed) if (!p.identityError && identityKey(p)) idCount.set(identityKey(p), (idCount.get(identityKey(p)) ?? 0) + 1);
  return listed.map((p) =>
    !p.identityError && (idCount.get(identityKey(p)) ?? 0) > 1 ? { ...p, identityError: `another port has the same USB identity (${identityKey(p)})` } : p,
  );
}

/** vendor:product:serial[:port]; '' without a serial number (no stable id to collide). */
function identityKey(p: SerialPortListing): string {
  return p.vendorId && p.productId && p.serialNumber ? `${p.vendorId}:${p.productId}:${p.serialNumber}${p.usbPort ? `:${p.usbPort}` : ''}` : '';
}

function describe(tty: SysfsTty, siblings: readonly SysfsUsbFacts[], devRoot: string): SerialPortListing {
  const port: SerialPortListing = { path: path.join(devRoot, tty.name), manufacturer: undefined, serialNumber: undefined, pnpId: undefined, locationId: undefined, productId: undefined, vendorId: undefined };
  if (tty.readError) return { ...port, identityError: tty.readError };
  const usb = tty.usb;
  if (!usb) return port;
  const problems: string[] = [];
  const checked = (name: string, value: string | undefined, pattern: RegExp, what: string): string | undefined => {
    if (value === undefined) {
      problems.push(`no ${name}`);
      return undefined;
    }
    if (pattern.test(value)) return value.toLowerCase();
    problems.push(`${name} ${JSON.stringify(value)} is not ${what}`);
    return undefined;
  };
  const vendorId = checked('idVendor', usb.idVendor, HEX4, '4 hex digits');
  const productId = checked('idProduct', usb.idProduct, HEX4, '4 hex digits');
  const facts = {
    ...port,
    ...(vendorId ? { vendorId } : {}),
    ...(productId ? { productId } : {}),
    ...(usb.serial ? { serialNumber: usb.serial } : {}),
    ...(usb.manufacturer ? { manufacturer: usb.manufacturer } : {}),
    ...(usb.product ? { product: usb.product } : {}),
  };
  if (siblings.length > 1) {
    const iface = checked('bInterfaceNumber', usb.bInterfaceNumber, HEX2, '2 hex digits');
    const sameInterface = siblings.filter((s) => s.bInterfaceNumber === usb.bInterfaceNumber).length;
    const number = sameInterface > 1 ? checked('port_number', usb.portNumber, DECIMAL, 'a number') : undefined;
    if (iface && (sameInterface === 1 || number)) facts.usbPort = `if${iface}${number ? `.${number}` : ''}`;
  }
  return problems.length > 0 ? { ...facts, identityError: `${problems.join('; ')} (${usb.device})` } : facts;
}

/**
 * The ttys of `<sysRoot>/class/tty` that have a device behind them, with the USB facts of those on
 * a USB device: from the tty's `device` link up the device tree to the first directory with an
 * idVendor (the USB device), the interface (bInterfaceNumber) on the way. A tty without a `device`
 * link is virtual (a console, ptmx) and no serial port.
 */
export async function readSysfsTtys(sysRoot: string): Promise<SysfsTty[]> {
  const classDir = path.join(sysRoot, 'class', 'tty');
  const devicesRoot = await fsp.realpath(path.join(sysRoot, 'devices')).catch(() => path.join(sysRoot, 'devices'));
  const names = (await deviceDirectoryEntries(classDir)).sort();
  const ttys = await Promise.all(names.map((name) => readTty(classDir, name, devicesRoot)));
  return ttys.filter((t): t is SysfsTty => t !== undefined);
}

async function readTty(classDir: string, name: string, devicesRoot: string): Promise<SysfsTty | undefined> {
  let deviceDir: string;
  try {
    deviceDir = await fsp.realpath(path.join(classDir, name, 'device'));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    return { name, readError: `cannot resolve ${path.join(classDir, name, 'device')}: ${errorMessage(err)}` };
  }
  try {
    const uartType = await readSysfsAttribute(path.join(classDir, name, 'type'));
    const usb = await usbFacts(deviceDir, devicesRoot);
    return { name, ...(uartType !== undefined ? { uartType } : {}), ...(usb ? { usb } : {}) };
  } catch (err) {
    return { name, readError: errorMessage(err) };
  }
}

async function usbFacts(deviceDir: string, devicesRoot: string): Promise<SysfsUsbFacts | undefined> {
  let bInterfaceNumber: string | undefined;
  let dir = deviceDir;
  for (let depth = 0; depth < MAX_WALK && dir.startsWith(devicesRoot + path.sep); depth++, dir = path.dirname(dir)) {
    bInterfaceNumber ??= await readSysfsAttribute(path.join(dir, 'bInterfaceNumber'));
    const idVendor = await readSysfsAttribute(path.join(dir, 'idVendor'));
    if (idVendor === undefined) continue;
    const [idProduct, serial, manufacturer, product, portNumber] = await Promise.all([
      readSysfsAttribute(path.join(dir, 'idProduct')),
      readSysfsAttribute(path.join(dir, 'serial')),
      readSysfsAttribute(path.join(dir, 'manufacturer')),
      readSysfsAttribute(path.join(dir, 'product')),
      readSysfsAttribute(path.join(deviceDir, 'port_number')),
    ]);
    return { device: dir, idVendor, idProduct, serial, manufacturer, product, bInterfaceNumber, portNumber };
  }
  return undefined;
}

/** The machine's serial ports from sysfs alone: no udevadm, no udev database (see docs/devices.md). */
export async function listSysfsSerialPorts(sysRoot = '/sys', devRoot = '/dev'): Promise<SerialPortListing[]> {
  return serialPortsFromSysfs(await readSysfsTtys(sysRoot), devRoot);
}
