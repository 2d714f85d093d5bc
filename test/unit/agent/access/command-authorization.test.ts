import { strict as assert } from 'node:assert';
import { authorizeCommand } from '../../../../agent/access/command-authorization';
import type { DeviceMeshError } from '../../../../src/errors';
import { CommandOp, type CommandRequest } from '../../../../src/socket-plane/device-command';
import { Stats } from '../../../../src/telemetry/stats';

function command(op: CommandOp, value = 1): CommandRequest {
  return { requestId: 1, op, target: 'baudRate', value, data: Buffer.alloc(0) };
}

describe('agent/access/command-authorization', () => {
  const rw = { mappingId: 'm', readOnly: false, pinSerial: false };
  const ro = { mappingId: 'm', readOnly: true, pinSerial: false };

  it('a read-write mapping runs everything; a configuring command shows in the configuration', () => {
    const stats = new Stats();
    assert.deepEqual(authorizeCommand(rw, command(CommandOp.GpioSet), '/dev/x', stats).reconfigures, true);
    assert.deepEqual(authorizeCommand(rw, command(CommandOp.GpioGet), '/dev/x', stats).reconfigures, false);
    assert.deepEqual(authorizeCommand(rw, command(CommandOp.SerialConfigure, 0), '/dev/x', stats).reconfigures, false, 'value 0 only asks');
  });

  it('a read-only mapping may only read: anything else is refused and counted', () => {
    const stats = new Stats();
    assert.equal(authorizeCommand(ro, command(CommandOp.SensorRead), '/dev/x', stats).command.op, CommandOp.SensorRead);
    assert.equal(authorizeCommand(ro, command(CommandOp.SerialConfigure, 0), '/dev/x', stats).command.value, 0);
    assert.throws(
      () => authorizeCommand(ro, command(CommandOp.GpioSet), '/dev/x', stats),
      (err: DeviceMeshError) => err.code === 'PERMISSION_DENIED' && /mapping m is read-only: GpioSet is not allowed/.test(err.message),
    );
    assert.equal(stats.counter('commands_refused', { mapping: 'm', reason: 'read_only' }).value, 1);
  });

  it('a pinned mapping asks for the setting in use instead of changing it, counted', () => {
    const stats = new Stats();
    const run = authorizeCommand({ ...rw, pinSerial: true }, command(CommandOp.SerialConfigure, 115200), '/dev/x', stats);
    assert.equal(run.command.value, 0);
    assert.equal(run.reconfigures, false);
    assert.equal(stats.counter('serial_changes_pinned', { device: '/dev/x', setting: 'baudRate' }).value, 1);
  });
});
