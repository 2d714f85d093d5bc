import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { DeviceConfig, DeviceHandle } from '../../../agent/drivers/device-driver';
import { decodeBlock } from '../../../agent/drivers/scpi-answer';
import { ScpiDriver } from '../../../agent/drivers/scpi-driver';
import { DeviceError, UnsupportedError, ValidationError } from '../../../src/errors';
import { CommandOp, type CommandReply } from '../../../src/socket-plane/device-command';
import { type DeviceEvent, DeviceEventType } from '../../../src/socket-plane/device-event';
import { haveSocat, PtyPair } from '../../helpers/pty';
import { ScpiInstrument, type ScpiInstrumentOptions } from '../../helpers/scpi-instrument';
import { waitFor } from '../../unit/agent/helpers';

const IDENTITY = 'ACME Instruments,DMM-7,SN4711,2.3.1';

function config(settings: Record<string, string> = {}): DeviceConfig {
  return { serial: null, settings };
}

function query(handle: DeviceHandle, text: string): Promise<CommandReply> {
  return handle.execute({ op: CommandOp.ScpiQuery, target: '', value: 0, data: Buffer.from(text) });
}

function write(handle: DeviceHandle, text: string): Promise<CommandReply> {
  return handle.execute({ op: CommandOp.ScpiWrite, target: '', value: 0, data: Buffer.from(text) });
}

for (const transport of ['serial', 'usbtmc'] as const) {
  describe(`agent/drivers/scpi-driver over ${transport} on a socat pty pair`, function () {
    this.timeout(60_000);
    let dir: string;
    let pty: PtyPair | undefined;
    let instrument: ScpiInstrument | undefined;
    let handle: DeviceHandle | undefined;

    before(function () {
      if (!haveSocat()) {
        console.log('      skipped: socat is not installed (scripts/install-test-deps.sh installs it)');
        this.skip();
      }
    });

    /** The device path names the transport: "usbtmc" in it picks usbtmc by default (tested here), the rest serial. */
    async function start(settings: Record<string, string> = {}, options: ScpiInstrumentOptions = {}): Promise<DeviceHandle> {
      dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dm-scpi-'));
      pty = await PtyPair.create(path.join(dir, transport === 'usbtmc' ? 'usbtmc0' : 'ttyS-dmm'), path.join(dir, 'instrument'));
      instrument = await ScpiInstrument.open(pty.peer, { identity: IDENTITY, ...options });
      handle = await new ScpiDriver().open(pty.device, config(settings));
      return handle;
    }

    afterEach(async () => {
      await handle?.close();
      await instrument?.close();
      // Removing the pty pair also ends a usbtmc read still waiting in the pool.
      await pty?.remove();
      handle = instrument = pty = undefined;
      if (dir) fs.rmSync(dir, { recursive: true, force: true });
    });

    it('asks *IDN? on open and reports identity and settings in configuration()', async () => {
      const h = await start();
      const c = await h.configuration();
      assert.equal(c.transport, transport);
      assert.equal(c.idn, IDENTITY);
      assert.deepEqual([c.manufacturer, c.model, c.serial, c.firmware], ['ACME Instruments', 'DMM-7', 'SN4711', '2.3.1']);
      assert.equal(c.terminator, '\\n');
      assert.equal(c.timeoutMs, '2000');
      assert.equal(c.baudRate, transport === 'serial' ? '9600' : undefined);
    });

    it('writes a setting and reads it back as text and number', async () => {
      const h = await start();
      await write(h, 'VOLT 3.3');
      const reply = await query(h, 'MEAS:VOLT?');
      assert.equal(reply.data.toString(), '+3.300000E+00');
      assert.equal(reply.value, 3.3);
      const idn = await query(h, '*IDN?');
      assert.ok(Number.isNaN(idn.value));
    });

    it('runs concurrent commands one at a time, in call order', async () => {
      const h = await start();
      const replies: Array<Promise<CommandReply>> = [];
      for (let i = 0; i < 20; i++) {
        void write(h, `VOLT ${i}`);
        replies.push(query(h, 'MEASure:VOLTage?'));
      }
      assert.deepEqual(
        (await Promise.all(replies)).map((r) => r.value),
        Array.from({ length: 20 }, (_, i) => i),
      );
      assert.deepEqual(instrument?.received.slice(1, 5), ['VOLT 0', 'MEASure:VOLTage?', 'VOLT 1', 'MEASure:VOLTage?']);
    });

    it('fails a query the instrument answers too late, and drops that late answer instead of handing it to the next query', async () => {
      const h = await start({ timeoutMs: '1000' });
      await write(h, 'VOLT 7.5');
      // Answered after 1500 ms, while the next query below (answered 700 ms after it is sent)
      // would, without the drop, be sent at 1000 ms and get the late answer at 1500 ms.
      await assert.rejects(query(h, 'MEAS:SLOW? 1500'), (err: unknown) => {
        assert.ok(err instanceof DeviceError);
        assert.equal(err.message, 'instrument did not answer MEAS:SLOW? 1500 within 1000 ms');
        return true;
      });
      await write(h, 'VOLT 2');
      assert.equal((await query(h, 'MEAS:SLOW? 700')).value, 2);
      assert.equal((await query(h, '*IDN?')).data.toString(), IDENTITY);
    });

    it('fails an unknown query after its timeout and finds the instrument error queued', async () => {
      const h = await start({ timeoutMs: '300' });
      await assert.rejects(query(h, 'FOO:BAR?'), /instrument did not answer FOO:BAR\? within 300 ms/);
      assert.equal((await query(h, 'SYST:ERR?')).data.toString(), '-113,"Undefined header"');
      assert.equal((await query(h, 'SYST:ERR?')).data.toString(), '0,"No error"');
    });

    it('reads a definite-length block whose bytes hold the terminator, quotes and #', async () => {
      const h = await start();
      const trace = Buffer.from(Array.from({ length: 300 }, (_, i) => [0x0a, 0x23, 0x22, 0x0d][i % 4] ^ (i & 0xf0)));
      assert.ok(instrument);
      instrument.trace = trace;
      const reply = await query(h, 'TRAC:DATA?');
      assert.equal(reply.data.subarray(0, 5).toString(), '#3300');
      assert.ok(decodeBlock(reply.data).equals(trace));
      assert.ok(Number.isNaN(reply.value));
      assert.equal((await query(h, '*OPC?')).value, 1, 'the answer after the block is still in step');
    });

    it('with checkErrors, fails a write the instrument refuses with the instrument error', async () => {
      const h = await start({ checkErrors: 'true' });
      assert.equal(instrument?.received[0], '*CLS');
      await assert.rejects(write(h, 'BOGUS 1'), (err: unknown) => {
        assert.ok(err instanceof DeviceError);
        assert.equal(err.message, 'the instrument reported -113,"Undefined header" after BOGUS 1');
        return true;
      });
      await assert.rejects(write(h, 'VOLT abc'), /-104,"Data type error"/);
      await write(h, 'VOLT 2');
      assert.equal((await query(h, 'MEAS:VOLT?')).value, 2);
      assert.deepEqual(instrument?.received.slice(-3), ['VOLT 2', 'SYST:ERR?', 'MEAS:VOLT?']);
    });

    it('speaks \\r\\n when told to', async () => {
      const h = await start({ terminator: '\\r\\n' }, { terminator: '\r\n' });
      assert.equal((await query(h, '*IDN?\r\n')).data.toString(), IDENTITY);
      assert.equal((await h.configuration()).terminator, '\\r\\n');
    });

    it('refuses other command ops, queries without "?", and bytes on its stream', async () => {
      const h = await start();
      await assert.rejects(h.execute({ op: CommandOp.GpioGet, target: 'x', value: 0, data: Buffer.alloc(0) }), UnsupportedError);
      await assert.rejects(query(h, 'VOLT 1'), ValidationError);
      await assert.rejects(query(h, ''), ValidationError);
      const refused = new Promise<unknown>((resolve) => h.stream.once('error', resolve));
      h.stream.write(Buffer.from('*RST\n'));
      assert.ok((await refused) instanceof UnsupportedError);
    });

    it('applies changed settings, reopening for another transport, and refuses unknown ones', async () => {
      const h = await start();
      await h.update(config({ timeoutMs: '500' }));
      // Its late answer (at 750 ms) comes within the next 500 ms of quiet, and is dropped before the reopen.
      await assert.rejects(query(h, 'MEAS:SLOW? 750'), /within 500 ms/);
      await assert.rejects(h.update(config({ timeout: '300' })), /settings\.timeout: is not a setting of the scpi driver/);
      const other = transport === 'serial' ? 'usbtmc' : 'serial';
      await h.update(config({ transport: other }));
      assert.equal((await h.configuration()).transport, other);
      assert.equal((await query(h, '*IDN?')).data.toString(), IDENTITY);
    });

    it('reports the device gone: DeviceError event, stream close, the waiting query failed', async () => {
      const h = await start();
      const events: DeviceEvent[] = [];
      h.onEvent((e) => events.push(e));
      const closed = new Promise<void>((resolve) => h.stream.once('close', resolve));
      const failed = assert.rejects(query(h, 'MEAS:SLOW? 5000'), DeviceError);
      await waitFor(() => instrument?.received.includes('MEAS:SLOW? 5000') ?? false, 'the query to arrive');
      await instrument?.close();
      await pty?.remove();
      await failed;
      await closed;
      assert.equal(events.length, 1);
      assert.equal(events[0].type, DeviceEventType.DeviceError);
      await assert.rejects(query(h, '*IDN?'), DeviceError);
    });

    it('fails queued commands when closed', async () => {
      const h = await start();
      const slow = assert.rejects(query(h, 'MEAS:SLOW? 3000'), /closed/);
      const queued = assert.rejects(query(h, '*IDN?'), /closed/);
      await waitFor(() => instrument?.received.includes('MEAS:SLOW? 3000') ?? false, 'the query to arrive');
      await h.close();
      await Promise.all([slow, queued]);
    });

    it('fails open when nothing answers *IDN?', async () => {
      dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dm-scpi-'));
      pty = await PtyPair.create(path.join(dir, transport === 'usbtmc' ? 'usbtmc0' : 'ttyS-dmm'), path.join(dir, 'instrument'));
      await assert.rejects(
        new ScpiDriver().open(pty.device, config({ timeoutMs: '300' })),
        /cannot open .*: instrument did not answer \*IDN\? within 300 ms/,
      );
    });
  });
}
