/** A Binding document of a serial device exposed raw on 127.0.0.1:`port`, 115200 8N1, as the e2e tests apply it. */
export function rawSerialBinding(name: string, workload: string, host: string, devicePath: string, port: number): string {
  return [
    'kind: Binding',
    `name: ${name}`,
    `workload: ${workload}`,
    `device: { host: ${host}, path: ${devicePath} }`,
    `virtual: { name: modem, protocol: raw, listen: 127.0.0.1:${port} }`,
    'serial: { baudRate: 115200, dataBits: 8, parity: none, stopBits: 1, flowControl: none }',
    '',
  ].join('\n');
}
