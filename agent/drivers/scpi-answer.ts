import { ProtocolError } from '../../src/errors';

/** The largest answer held in memory: the waveform block of a deep-memory oscilloscope fits. */
export const MAX_ANSWER_BYTES = 64 * 1024 * 1024;

/** One answer cut from the byte stream, or why it could not be read (the stream stays in step). */
export type ScpiFrame = { ok: true; answer: Buffer } | { ok: false; error: ProtocolError };

const HASH = 0x23;
const QUOTE = 0x22;
const ZERO = 0x30;

enum State {
  Text,
  /** Inside "…": a '#' there is text, not a block. */
  String,
  /** Just after a '"' in a string: either its end or the first half of "". */
  StringQuote,
  /** Just after '#': a digit starts a block, a letter is #H/#Q/#B numeric data. */
  Hash,
  LengthDigits,
  /** The bytes of a definite-length block, counted, not scanned: they may hold the terminator. */
  Body,
  /** #0…: an indefinite-length block runs to the terminator. */
  Indefinite,
  /** After a malformed block header: everything up to the terminator belongs to the failed answer. */
  Skip,
}

function isDigit(b: number): boolean {
  return b >= ZERO && b <= ZERO + 9;
}

/**
 * Cuts an instrument's byte stream into answers (IEEE 488.2 response messages): an answer ends
 * at the terminator, except inside a definite-length block `#<n><length><bytes>`, whose bytes are
 * skipped by count. A malformed block header yields an error frame in that answer's place, so the
 * answers after it still line up with their queries.
 */
export class ScpiAnswerFramer {
  private state = State.Text;
  private parts: Buffer[] = [];
  private size = 0;
  /** How many bytes of the terminator the stream has matched so far. */
  private matched = 0;
  private digits = 0;
  private remaining = 0;
  private error: ProtocolError | null = null;

  constructor(
    private readonly terminator: Buffer,
    private readonly maxBytes = MAX_ANSWER_BYTES,
  ) {
    if (terminator.length === 0) throw new ProtocolError('an answer terminator must not be empty');
  }

  push(chunk: Buffer): ScpiFrame[] {
    const frames: ScpiFrame[] = [];
    let start = 0;
    let i = 0;
    while (i < chunk.length) {
      if (this.state === State.Body) {
        const n = Math.min(this.remaining, chunk.length - i);
        i += n;
        this.remaining -= n;
        if (this.remaining === 0) this.state = State.Text;
        continue;
      }
      const b = chunk[i++];
      this.step(b);
      if (this.inBlockHeaderOrBody()) continue;
      this.matched = b === this.terminator[this.matched] ? this.matched + 1 : b === this.terminator[0] ? 1 : 0;
      if (this.matched === this.terminator.length) {
        frames.push(this.finish(chunk.subarray(start, i)));
        start = i;
      }
    }
    if (start < chunk.length) this.keep(chunk.subarray(start));
    return frames;
  }

  /** Forgets a partial answer (after the line was resynchronised). */
  reset(): void {
    this.state = State.Text;
    this.parts = [];
    this.size = this.matched = 0;
    this.error = null;
  }

  private step(b: number): void {
    switch (this.state) {
      case State.Text:
        if (b === QUOTE) this.state = State.String;
        else if (b === HASH) this.state = State.Hash;
        return;
      case State.String:
        if (b === QUOTE) this.state = State.StringQuote;
        return;
      case State.StringQuote:
        this.state = b === QUOTE ? State.String : State.Text;
        if (this.state === State.Text) this.step(b);
        return;
      case State.Hash:
        if (b === ZERO) this.state = State.Indefinite;
        else if (isDigit(b)) {
          this.state = State.LengthDigits;
          this.digits = b - ZERO;
          this.remaining = 0;
        } else {
          this.state = State.Text;
          this.step(b);
        }
        return;
      case State.LengthDigits:
        if (!isDigit(b)) {
          this.fail(`malformed block: a length digit expected, got byte 0x${b.toString(16).padStart(2, '0')}`);
          return;
        }
        this.remaining = this.remaining * 10 + (b - ZERO);
        if (--this.digits > 0) return;
        if (this.remaining > this.maxBytes) {
          // Its length is known, so the block is skipped exactly and the stream stays in step.
          this.error = new ProtocolError(`block of ${this.remaining} bytes is larger than ${this.maxBytes}`);
          this.parts = [];
        }
        this.state = this.remaining > 0 ? State.Body : State.Text;
        return;
      default:
        return;
    }
  }

  /** Length digits and block bytes are counted: a terminator byte there is data. */
  private inBlockHeaderOrBody(): boolean {
    return this.state === State.Body || this.state === State.LengthDigits;
  }

  private fail(reason: string): void {
    this.error = new ProtocolError(reason);
    this.parts = [];
    this.state = State.Skip;
  }

  private keep(part: Buffer): void {
    if (this.error) return;
    this.parts.push(part);
    this.size += part.length;
    if (this.size > this.maxBytes) this.fail(`answer longer than ${this.maxBytes} bytes without a terminator`);
  }

  private finish(tail: Buffer): ScpiFrame {
    this.keep(tail);
    const error = this.error;
    const whole = error ? Buffer.alloc(0) : this.parts.length === 1 ? this.parts[0] : Buffer.concat(this.parts);
    this.reset();
    if (error) return { ok: false, error };
    return { ok: true, answer: whole.subarray(0, whole.length - this.terminator.length) };
  }
}

/** Encodes `payload` as an IEEE 488.2 definite-length block. */
export function encodeBlock(payload: Buffer): Buffer {
  const length = String(payload.length);
  if (length.length > 9) throw new ProtocolError(`a block holds fewer than 10^9 bytes, not ${payload.length}`);
  return Buffer.concat([Buffer.from(`#${length.length}${length}`, 'latin1'), payload]);
}

/** The payload of an answer that is exactly one block: `#<n><length><bytes>`, or `#0<bytes>`. */
export function decodeBlock(answer: Buffer): Buffer {
  if (answer.length < 2 || answer[0] !== HASH || !isDigit(answer[1])) {
    throw new ProtocolError('a block starts with # and a digit');
  }
  const n = answer[1] - ZERO;
  if (n === 0) return answer.subarray(2);
  const header = 2 + n;
  if (answer.length < header) throw new ProtocolError(`block header #${n} needs ${n} length digits, has ${answer.length - 2}`);
  for (let i = 2; i < header; i++) {
    if (!isDigit(answer[i])) throw new ProtocolError(`block length "${answer.toString('latin1', 2, header)}" is not a number`);
  }
  const length = Number(answer.toString('latin1', 2, header));
  const actual = answer.length - header;
  if (actual !== length) throw new ProtocolError(`block declares ${length} bytes but holds ${actual}`);
  return answer.subarray(header);
}

const DECIMAL = /^\s*[+-]?(\d+\.?\d*|\.\d+)(\s*[eE]\s*[+-]?\d+)?\s*$/;
const NON_DECIMAL: Record<string, { radix: number; digits: RegExp }> = {
  H: { radix: 16, digits: /^[0-9A-Fa-f]+$/ },
  Q: { radix: 8, digits: /^[0-7]+$/ },
  B: { radix: 2, digits: /^[01]+$/ },
};

/** An answer as a number (NR1/NR2/NR3, or #H/#Q/#B non-decimal data); NaN when it is not one. */
export function answerNumber(answer: Buffer): number {
  if (answer.length > 64) return NaN;
  const text = answer.toString('latin1');
  if (DECIMAL.test(text)) return Number(text.replace(/\s+/g, ''));
  const nonDecimal = /^\s*#([HQBhqb])(\S+)\s*$/.exec(text);
  const base = nonDecimal ? NON_DECIMAL[nonDecimal[1].toUpperCase()] : undefined;
  if (!nonDecimal || !base || !base.digits.test(nonDecimal[2])) return NaN;
  return parseInt(nonDecimal[2], base.radix);
}

export interface ScpiError {
  code: number;
  message: string;
}

/** Parses a SYSTem:ERRor? answer: `<code>,"<message>"` (a "" in the message is one quote). */
export function parseScpiError(answer: Buffer): ScpiError {
  const text = answer.toString('latin1');
  const match = /^\s*([+-]?\d+)\s*,\s*"((?:[^"]|"")*)"\s*$/.exec(text);
  if (!match) throw new ProtocolError(`"${text.slice(0, 80)}" is not a SYSTem:ERRor? answer (<code>,"<message>")`);
  return { code: Number(match[1]), message: match[2].replace(/""/g, '"') };
}

export interface ScpiIdentity {
  manufacturer: string;
  model: string;
  serial: string;
  firmware: string;
}

/** Parses an *IDN? answer: four comma-separated fields (IEEE 488.2 §10.14). */
export function parseIdentity(answer: Buffer): ScpiIdentity {
  const text = answer.toString('latin1').trim();
  const fields = text.split(',').map((f) => f.trim());
  if (fields.length !== 4) throw new ProtocolError(`"${text.slice(0, 80)}" is not an *IDN? answer (4 fields, not ${fields.length})`);
  const [manufacturer, model, serial, firmware] = fields;
  return { manufacturer, model, serial, firmware };
}
