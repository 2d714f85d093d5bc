import { PermissionDeniedError } from '../../src/errors';
import { CommandOp, type CommandRequest } from '../../src/socket-plane/device-command';
import type { Stats } from '../../src/telemetry/stats';

/** Commands that change what the endpoint's configuration shows. */
const CONFIGURING_COMMANDS = new Set<CommandOp>([CommandOp.SerialConfigure, CommandOp.SerialSetLine, CommandOp.GpioSet, CommandOp.GpioSetDirection]);

/** Commands that only read: the ones a read-only mapping may send. */
const READ_ONLY_COMMANDS = new Set<CommandOp>([CommandOp.SerialGetLines, CommandOp.GpioGet, CommandOp.SensorRead, CommandOp.HidGetFeature]);

/** What a session's mapping allows of its control commands. */
export interface CommandRights {
  readonly mappingId: string;
  readonly readOnly: boolean;
  /** The policy pins the serial settings: a change is answered with the setting in use. */
  readonly pinSerial: boolean;
}

/** The command to run on the device, and whether it changes what the endpoint's configuration shows. */
export interface AuthorizedCommand {
  readonly command: CommandRequest;
  readonly reconfigures: boolean;
}

/**
 * A session's control command as its mapping allows it: a read-only mapping may only read
 * (PermissionDeniedError otherwise, counted); a pinned mapping's serial change becomes a read of
 * the setting in use (counted).
 */
export function authorizeCommand(rights: CommandRights, command: CommandRequest, device: string, stats: Stats): AuthorizedCommand {
  const configure = command.op === CommandOp.SerialConfigure;
  const reads = READ_ONLY_COMMANDS.has(command.op) || (configure && command.value === 0);
  if (rights.readOnly && !reads) {
    stats.add('commands_refused', 1, { mapping: rights.mappingId, reason: 'read_only' });
    throw new PermissionDeniedError(`mapping ${rights.mappingId} is read-only: ${CommandOp[command.op] ?? command.op} is not allowed`);
  }
  if (configure && rights.pinSerial && command.value !== 0) {
    stats.add('serial_changes_pinned', 1, { device, setting: command.target });
    return { command: { ...command, value: 0 }, reconfigures: false };
  }
  return { command, reconfigures: !reads && CONFIGURING_COMMANDS.has(command.op) };
}
