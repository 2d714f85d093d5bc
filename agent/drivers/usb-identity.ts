/**
 * The stable id of a USB device, the same on whatever port it is plugged into:
 * "usb-<vendor>:<product>:<serial>" with vendor and product as 4 lowercase hex digits. Without a
 * serial number two identical devices cannot be told apart, so there is no stable id. `port` tells
 * the ports of one multi-port device apart (a 4-port FTDI has one serial number): ":<port>" is
 * appended, e.g. "if01" for its second interface.
 */
export function usbDeviceId(
  vendorId: string | number | undefined,
  productId: string | number | undefined,
  serialNumber: string | undefined,
  port?: string,
): string | undefined {
  if (vendorId === undefined || vendorId === '' || productId === undefined || productId === '' || !serialNumber) return undefined;
  const hex = (v: string | number): string => (typeof v === 'number' ? v.toString(16) : v.toLowerCase()).padStart(4, '0');
  return `usb-${hex(vendorId)}:${hex(productId)}:${serialNumber}${port ? `:${port}` : ''}`;
}
