import * as assert from 'node:assert/strict';
import type { Duplex } from 'node:stream';
import type { DeviceHandle } from '../../../agent/drivers/device-driver';
import { SerialDriver } from '../../../agent/drivers/serial-driver';
import {
  SIMULATED_MODEM_IDENTITY,
  SIMULATED_MODEM_VERSION,
  SimulatedModemBinding,
  SimulatedModemPort,
} from '../../../agent/drivers/simulated-modem';
import type { SerialConfig } from '../../../src/proto/types';
import { lineConfig } from './helpers';

const CONFIG: SerialConfig = { baudRate: 115200, dataBits: 8, parity: 'PARITY_NONE', stopBits: 'STOP_BITS_ONE', flowControl: 'FLOW_CONTROL_NONE' };

/** Sends `text` and resolves with everything the modem sent back until `until` appeared. */
function converse(stream: Duplex, text: string, until: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let got = '';
    const timer = setTimeout(() => {
      stream.off('data', onData);
      reject(new Error(`no ${JSON.stringify(until)} in ${JSON.stringify(got)}`));
    }, 2000);
    const onData = (chunk: Buffer): void => {
      got += chunk.toString('latin1');
      if (got.includes(until)) {
        clearTimeout(timer);
        stream.off('data', onData);
        resolve(got);
      }
    };
    stream.on('data', onData);
    stream.write(text);
  });
}

describe('agent/drivers/simulated-modem', () => {
  let handle: DeviceHandle;
  let binding: SimulatedModemBinding;

  beforeEach(async () => {
    binding = new SimulatedModemBinding(['modem0']);
    handle = await new SerialDriver(binding).open('sim:modem0', lineConfig(CONFIG));
  });

  afterEach(async () => {
    await handle.close();
  });

  it('lists sim:modem0', async () => {
    const ports = await binding.list();
    assert.deepEqual(
      ports.map((p) => p.path),
      ['sim:modem0'],
    );
  });

  it('echoes the command and answers AT with OK', async () => {
    assert.equal(await converse(handle.stream, 'AT\r', 'OK\r\n'), 'AT\r\r\nOK\r\n');
  });

  it('answers ATI and AT+GMR, and ERROR to anything else', async () => {
    assert.equal(await converse(handle.stream, 'ATI\r', 'OK\r\n'), `ATI\r\r\n${SIMULATED_MODEM_IDENTITY}\r\n\r\nOK\r\n`);
    assert.equal(await converse(handle.stream, 'AT+GMR\r', 'OK\r\n'), `AT+GMR\r\r\n${SIMULATED_MODEM_VERSION}\r\n\r\nOK\r\n`);
    assert.equal(await converse(handle.stream, 'ATXYZ\r', 'ERROR\r\n'), 'ATXYZ\r\r\nERROR\r\n');
  });

  it('turns echo off with ATE0 and on with ATE1', async () => {
    assert.equal(await converse(handle.stream, 'ATE0\r', 'OK\r\n'), 'ATE0\r\r\nOK\r\n');
    assert.equal(await converse(handle.stream, 'AT\r', 'OK\r\n'), '\r\nOK\r\n');
    assert.equal(await converse(handle.stream, 'ATE1\r', 'OK\r\n'), '\r\nOK\r\n');
    assert.equal(await converse(handle.stream, 'AT\r', 'OK\r\n'), 'AT\r\r\nOK\r\n');
  });

  it('handles a command split across writes and CRLF line ends', async () => {
    const reply = converse(handle.stream, 'A', 'OK\r\n');
    handle.stream.write('T\r\n');
    // The LF is echoed after the answer to the CR that ended the command.
    assert.match(await reply, /^AT\r\r\nOK\r\n\n?$/);
  });

  it('refuses a second open of the same modem, and opens it again after close', async () => {
    await assert.rejects(new SerialDriver(binding).open('sim:modem0', lineConfig(CONFIG)), /already open/);
    await assert.rejects(new SerialDriver(binding).open('sim:modem9', lineConfig(CONFIG)), /no simulated device at sim:modem9/);
    await handle.close();
    handle = await new SerialDriver(binding).open('sim:modem0', lineConfig(CONFIG));
  });

  it('applies a baud-rate update', async () => {
    await handle.update(lineConfig({ ...CONFIG, baudRate: 9600 }));
    const port = (handle.stream as unknown as { port: SimulatedModemPort }).port;
    assert.deepEqual(await port.getBaudRate(), { baudRate: 9600 });
  });
});

describe('agent/drivers/simulated-modem port (binding contract)', () => {
  it('resolves a read with at least one byte, and rejects a pending read with canceled on close', async () => {
    const binding = new SimulatedModemBinding(['modem0']);
    const port = await binding.open({ path: 'sim:modem0', baudRate: 9600 });
    await port.write(Buffer.from('AT\r'));
    const buf = Buffer.alloc(64);
    const first = await port.read(buf, 0, 2);
    assert.equal(first.bytesRead, 2);
    assert.equal(buf.subarray(0, 2).toString(), 'AT');
    const rest = await port.read(buf, 0, 64);
    assert.equal(buf.subarray(0, rest.bytesRead).toString(), '\r\r\nOK\r\n');

    const pending = port.read(buf, 0, 64);
    await port.close();
    await assert.rejects(pending, (err: Error & { canceled?: boolean }) => err.canceled === true);
    await assert.rejects(port.read(buf, 0, 64), (err: Error & { canceled?: boolean }) => err.canceled === true);
    assert.equal(port.isOpen, false);
  });
});
