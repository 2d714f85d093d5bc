/** The Modbus exception codes devicemesh answers with itself (a device's own exceptions pass through unchanged). */
export const ModbusException = {
  /** The function is not allowed: a read-only binding's write (anything but FC 1–4). */
  IllegalFunction: 0x01,
  /** Gateway path unavailable: no path to the unit (not in the binding's units, device gone, queue full). */
  GatewayPathUnavailable: 0x0a,
  /** Gateway target device failed to respond: a timeout, a CRC error, an answer that does not fit the request. */
  GatewayTargetFailed: 0x0b,
} as const;

export type ModbusExceptionCode = (typeof ModbusException)[keyof typeof ModbusException];

/** A function code with the exception bit set is an exception response. */
export const EXCEPTION_BIT = 0x80;

/** FC 1–4: read coils, discrete inputs, holding and input registers; all a read-only binding may send. */
export function isReadFunction(functionCode: number): boolean {
  return functionCode >= 1 && functionCode <= 4;
}
