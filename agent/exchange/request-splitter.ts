import { ResourceExhaustedError, ValidationError } from '../../src/errors';
import { createResponseFramer, type ResponseFramer } from './response-framer';

/**
 * Cuts a consumer's byte stream into commands, each ending with the terminator (shared and
 * time-slice sharing queue whole commands, so that no device ever sees half of one).
 */
export class RequestSplitter {
  /** A command is framed exactly like a terminated response. */
  private readonly framer: ResponseFramer;

  constructor(terminator: Buffer, private readonly maxCommandBytes: number) {
    if (terminator.length === 0) throw new ValidationError('requestTerminator', 'is empty');
    if (!Number.isInteger(maxCommandBytes) || maxCommandBytes < 1) {
      throw new ValidationError('maxCommandBytes', `${maxCommandBytes} is not a positive integer`);
    }
    this.framer = createResponseFramer({ kind: 'terminator', terminator }, maxCommandBytes);
  }

  /** The complete commands in order, each ending with its terminator; keeps the unfinished rest.
   *  Throws ResourceExhaustedError when an unfinished command grows past maxCommandBytes (and drops it). */
  push(chunk: Buffer): Buffer[] {
    const commands: Buffer[] = [];
    let rest = chunk;
    while (rest.length > 0) {
      let used: number;
      try {
        used = this.framer.push(rest);
      } catch {
        throw new ResourceExhaustedError(`a command exceeds the limit of ${this.maxCommandBytes} bytes without a terminator`);
      }
      if (used < 0) break;
      commands.push(this.framer.take());
      rest = rest.subarray(used);
    }
    return commands;
  }

  /** Bytes of the unfinished command. */
  get pending(): number {
    return this.framer.length;
  }
}
