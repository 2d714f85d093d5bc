import type { CommandAccess, CommandCodec, CommandSplitter, PreparedCommand } from './command-codec';
import { RequestSplitter } from './request-splitter';
import type { ResponseRule } from './response-framer';

/** Text commands: requests end with the policy's terminator and go to the device as they are, responses come back as they are. */
export class LineCodec implements CommandCodec {
  readonly checksAccess = false;

  constructor(
    readonly rule: ResponseRule,
    private readonly terminator: Buffer,
    private readonly maxCommandBytes: number,
    readonly write: (bytes: Buffer) => void,
  ) {}

  splitter(): CommandSplitter {
    return new RequestSplitter(this.terminator, this.maxCommandBytes);
  }

  prepare(request: Buffer, _access: CommandAccess): PreparedCommand {
    return { write: request };
  }

  answered(_request: Buffer, response: Buffer): Buffer {
    return response;
  }

  failed(): undefined {
    return undefined;
  }

  dropsUnsolicited(): boolean {
    return false;
  }

  heard(): void {
    // A text device has no bus timing to keep.
  }
}
