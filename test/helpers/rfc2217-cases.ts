import { strict as assert } from 'node:assert';
import type { PySerialClient, TelnetClient } from './rfc2217-clients';
import { waitFor } from './processes';

/**
 * The RFC 2217 acceptance cases, each against whichever endpoint its clients were opened on: the
 * sidecar's TCP listener (rfc2217.test.ts) or the agent's one-hop Unix socket (one-hop.test.ts).
 * One body per case, so both paths are held to the same bytes and answers.
 */

/** Every byte value and runs of 0xFF (IAC, which Telnet doubles) go out and echo back unchanged. */
export async function movesEveryByteValue(py: PySerialClient): Promise<void> {
  const data = Buffer.alloc(4096);
  for (let i = 0; i < data.length; i++) data[i] = i < 256 ? i : i % 5 === 0 ? 0xff : (i * 13) & 0xff;
  data.fill(0xff, 1000, 1300);
  await py.write(data);
  assert.deepEqual(await py.read(data.length), data);
}

/** pyserial's settings are what the kernel has: pyserial opened with { baudrate: 9600, stopbits: 2, rtscts: true }. */
export function sttyShows9600TwoStopBitsRtsCts(stty: string): void {
  assert.match(stty, /speed 9600 baud/);
  assert.match(stty, /(^|\s)cstopb(\s|$)/);
  assert.match(stty, /(^|\s)crtscts(\s|$)/);
}

/** The simulated modem, pyserial opened with { bytesize: 7, parity: 'E' }, answers AT. */
export async function modemWorksAt7E1(py: PySerialClient): Promise<void> {
  await py.write(Buffer.from('AT\r'));
  assert.equal((await py.read(9)).toString('latin1'), 'AT\r\r\nOK\r\n');
}

/** On the simulated modem bound at 115200 8N1: settings answered as asked, queries answer the value in use. */
export async function modemAnswersSettingsAndQueries(c: TelnetClient): Promise<void> {
  assert.deepEqual([...(await c.request(2, [7]))], [7]);
  assert.deepEqual([...(await c.request(3, [3]))], [3]);
  assert.deepEqual([...(await c.request(2, [0]))], [7]);
  assert.deepEqual([...(await c.request(3, [0]))], [3]);
  assert.deepEqual([...(await c.request(1, [0, 0, 0, 0]))], [0, 1, 0xc2, 0x00], '115200, the binding’s');
  assert.deepEqual([...(await c.request(4, [0]))], [1]);
}

/** Modem-state notifications reach pyserial: carrier detect after dialling, DSR and carrier gone after DTR drops. */
export async function modemStateReachesPySerial(py: PySerialClient): Promise<void> {
  const line = (name: string): Promise<unknown> => py.must({ op: 'get', name });
  assert.equal(await line('cd'), false);
  assert.equal(await line('dsr'), true);
  await py.write(Buffer.from('ATD5551234\r'));
  await waitFor('carrier detect', async () => (await line('cd')) === true, 10_000);
  await py.must({ op: 'set', name: 'dtr', value: false });
  await waitFor('DSR and carrier to drop', async () => (await line('dsr')) === false && (await line('cd')) === false, 10_000);
}

/**
 * Two clients that break the framing (a truncated and an oversized subnegotiation) are closed, one
 * that sends harmless garbage still gets answers, and pyserial beside them is untouched. The
 * endpoint then counts 2 in `rfc2217_protocol_errors`.
 */
export async function closesFramingBreakers(py: PySerialClient, telnet: () => Promise<TelnetClient>): Promise<void> {
  const truncated = await telnet();
  truncated.send([0xff, 0xfa, 44, 1, 0, 0xff, 0xf1]);
  await truncated.closed;
  const oversized = await telnet();
  oversized.send(Buffer.concat([Buffer.from([0xff, 0xfa, 44, 0]), Buffer.alloc(1000, 0x41)]));
  await oversized.closed;
  const harmless = await telnet();
  harmless.send([0xff, 0xf1, 0xff, 0xfa, 99, 1, 0xff, 0xf0, 0xff, 0xfa, 44, 60, 0xff, 0xf0, 0xff, 0xfd, 77]);
  assert.deepEqual([...(await harmless.request(2, [0]))], [8], 'the harmless one still gets answers');
  assert.ok(harmless.items.some((i) => i.kind === 'negotiate' && i.verb === 0xfc && i.option === 77), 'DO 77 was refused with WONT');
  const data = Buffer.from([0xff, 0x00, 0xff, 0xff, 0x41]);
  await py.write(data);
  assert.deepEqual(await py.read(data.length), data);
}

/** What `closesFramingBreakers` leaves in the endpoint's /stats text. */
export const TWO_PROTOCOL_ERRORS = /^rfc2217_protocol_errors\{mapping=[^}]+\}: 2$/m;
