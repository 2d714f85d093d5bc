import { ValidationError } from '../../src/errors';
import { rtuTiming } from '../../src/modbus/silent-interval';
import type { Policy, ResponseFraming, SerialConfig } from '../../src/proto/types';
import type { Stats } from '../../src/telemetry/stats';
import type { CommandCodec } from './command-codec';
import type { QueueTimers } from './command-queue';
import { LineCodec } from './line-codec';
import { ModbusRtuCodec } from './modbus-rtu-codec';
import type { ResponseRule } from './response-framer';

/** A serial line with no baud rate set opens at the driver's default. */
const DEFAULT_BAUD = 9600;

/** A fresh "\n" each time: a shared Buffer could be changed by whoever holds it. */
function line(): Buffer {
  return Buffer.from('\n', 'latin1');
}

/**
 * The bytes of a terminator written in a policy: one byte per character (latin1, as patterns
 * match), so that "\r\n" or "\x03" in a document are exactly those bytes. A character above
 * \u00ff is no byte and is refused rather than guessed at.
 */
function terminatorBytes(field: string, text: string): Buffer {
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code > 0xff) {
      const name = `U+${code.toString(16).toUpperCase().padStart(4, '0')}`;
      throw new ValidationError(field, `character ${i + 1} (${name}) is not a byte; write bytes as \\xNN`);
    }
  }
  return Buffer.from(text, 'latin1');
}

function compile(field: string, source: string): RegExp {
  try {
    return new RegExp(source);
  } catch (err) {
    throw new ValidationError(field, `is not a regular expression: ${(err as Error).message}`);
  }
}

/** The policy's response framing as a rule; null (or UNSPECIFIED) is a line ending in "\n". */
export function responseRule(framing: ResponseFraming | null): ResponseRule {
  if (framing === null) return { kind: 'terminator', terminator: line() };
  switch (framing.kind) {
    case 'RESPONSE_FRAMING_UNSPECIFIED':
      return { kind: 'terminator', terminator: line() };
    case 'RESPONSE_FRAMING_TERMINATOR':
      if (!framing.terminator) throw new ValidationError('policy.response.terminator', 'is empty');
      return { kind: 'terminator', terminator: terminatorBytes('policy.response.terminator', framing.terminator) };
    case 'RESPONSE_FRAMING_FIXED_LENGTH':
      if (!Number.isInteger(framing.length) || framing.length < 1) {
        throw new ValidationError('policy.response.length', `${framing.length} is not a positive number of bytes`);
      }
      return { kind: 'fixedLength', length: framing.length };
    case 'RESPONSE_FRAMING_LENGTH_PREFIX': {
      const prefixBytes = framing.length;
      if (prefixBytes !== 1 && prefixBytes !== 2 && prefixBytes !== 4) {
        throw new ValidationError('policy.response.length', `a length prefix is 1, 2 or 4 bytes, not ${prefixBytes}`);
      }
      return { kind: 'lengthPrefix', prefixBytes };
    }
    case 'RESPONSE_FRAMING_PATTERN': {
      if (!framing.pattern) throw new ValidationError('policy.response.pattern', 'is empty');
      const pattern = compile('policy.response.pattern', framing.pattern);
      // Such a pattern would end every response at its first byte.
      if (pattern.test('')) throw new ValidationError('policy.response.pattern', `/${framing.pattern}/ matches no bytes at all`);
      return { kind: 'pattern', pattern };
    }
    case 'RESPONSE_FRAMING_IDLE_GAP':
      if (!Number.isInteger(framing.idleGapMs) || framing.idleGapMs < 1) {
        throw new ValidationError('policy.response.idleGapMs', `${framing.idleGapMs} is not a positive number of ms`);
      }
      return { kind: 'idleGap', gapMs: framing.idleGapMs };
    default:
      throw new ValidationError('policy.response.kind', `${String((framing as ResponseFraming).kind)} is not a response framing`);
  }
}

/** The policy's request terminator as bytes; empty is "\n". */
export function requestTerminator(text: string): Buffer {
  return text ? terminatorBytes('policy.requestTerminator', text) : line();
}

/** The policy's ready pattern; empty is no handshake. */
export function readyPattern(text: string): RegExp | undefined {
  return text ? compile('policy.readyPattern', text) : undefined;
}

/** What a command codec is made for: one device, its policy and line settings, and how to write to it. */
export interface CodecContext {
  device: string;
  policy: Policy;
  serial: SerialConfig | null;
  maxCommandBytes: number;
  write: (bytes: Buffer) => void;
  stats: Stats;
  now: () => number;
  timers: QueueTimers;
}

/** The policy's command protocol: Modbus RTU framing, or text commands with its terminator and response rule. */
export function commandCodec(ctx: CodecContext): CommandCodec {
  if (ctx.policy.response?.kind === 'RESPONSE_FRAMING_MODBUS_RTU') {
    return new ModbusRtuCodec({ device: ctx.device, timing: rtuTiming(ctx.serial, DEFAULT_BAUD), stats: ctx.stats, write: ctx.write, now: ctx.now, timers: ctx.timers });
  }
  return new LineCodec(responseRule(ctx.policy.response), requestTerminator(ctx.policy.requestTerminator), ctx.maxCommandBytes, ctx.write);
}
