import { ResourceExhaustedError, ValidationError } from '../../src/errors';
import { LENGTH_BY_GAP, LENGTH_NEEDS_MORE, rtuResponseLength } from '../../src/modbus/rtu-response-length';

/** Where a device's answer to a command ends. */
export type ResponseRule =
  | { kind: 'terminator'; terminator: Buffer }
  | { kind: 'fixedLength'; length: number }
  | { kind: 'lengthPrefix'; prefixBytes: 1 | 2 | 4 } // big-endian length of what follows the prefix
  | { kind: 'pattern'; pattern: RegExp } // complete once the bytes so far (latin1) match
  | { kind: 'idleGap'; gapMs: number } // complete when the device is quiet gapMs
  | { kind: 'modbusRtu'; gapMs: number }; // by the function code's length; the inter-frame gap where that is not fixed

export interface ResponseFramer {
  /** Feeds device bytes of the response in progress. Returns how many bytes of `chunk` complete it
   *  (the rest of chunk is not part of it), or -1 when more are needed (all of chunk was taken).
   *  Throws ResourceExhaustedError once the response would exceed maxBytes (and drops what it had). */
  push(chunk: Buffer): number;
  /** For the idleGap rule: the quiet time that ends a response; undefined otherwise. */
  readonly idleGapMs: number | undefined;
  /** The complete response (all bytes taken so far), and resets for the next response. */
  take(): Buffer;
  /** Bytes taken so far. */
  readonly length: number;
}

/** The first allocation of a framer's buffer; it doubles as responses need, up to maxBytes. */
const INITIAL_CAPACITY = 256;

/**
 * The bytes of one response in one reused buffer (copied in as they arrive, so a chunk the caller
 * reuses cannot change a response), with the size limit; each rule says where its response ends.
 */
abstract class AccumulatingFramer implements ResponseFramer {
  protected store: Buffer;
  protected len = 0;

  constructor(protected readonly maxBytes: number) {
    if (!Number.isInteger(maxBytes) || maxBytes < 1) throw new ValidationError('maxResponseBytes', `${maxBytes} is not a positive integer`);
    this.store = Buffer.allocUnsafe(Math.min(maxBytes, INITIAL_CAPACITY));
  }

  get idleGapMs(): number | undefined {
    return undefined;
  }

  get length(): number {
    return this.len;
  }

  push(chunk: Buffer): number {
    if (chunk.length === 0) return -1;
    const end = this.find(chunk);
    const taking = end < 0 ? chunk.length : end;
    if (this.len + taking > this.maxBytes) this.tooLarge();
    this.append(chunk, taking);
    return end;
  }

  take(): Buffer {
    const response = Buffer.allocUnsafe(this.len);
    this.store.copy(response, 0, 0, this.len);
    this.reset();
    return response;
  }

  protected reset(): void {
    this.len = 0;
  }

  protected tooLarge(): never {
    this.reset();
    throw new ResourceExhaustedError(`a response exceeds the limit of ${this.maxBytes} bytes`);
  }

  /** How many bytes of `chunk` complete the response, or -1 when it needs more. */
  protected abstract find(chunk: Buffer): number;

  private append(chunk: Buffer, count: number): void {
    const needed = this.len + count;
    if (needed > this.store.length) {
      let capacity = this.store.length * 2;
      while (capacity < needed) capacity *= 2;
      const grown = Buffer.allocUnsafe(Math.min(capacity, this.maxBytes));
      this.store.copy(grown, 0, 0, this.len);
      this.store = grown;
    }
    chunk.copy(this.store, this.len, 0, count);
    this.len = needed;
  }
}

class TerminatorFramer extends AccumulatingFramer {
  constructor(private readonly terminator: Buffer, maxBytes: number) {
    super(maxBytes);
    if (terminator.length === 0) throw new ValidationError('terminator', 'is empty');
  }

  protected find(chunk: Buffer): number {
    const t = this.terminator;
    const m = t.length;
    // A terminator begun at the end of the previous bytes: the longest such start ends earliest.
    const store = this.store;
    for (let k = Math.min(m - 1, this.len); k >= 1; k--) {
      if (chunk.length >= m - k && t.compare(store, this.len - k, this.len, 0, k) === 0 && t.compare(chunk, 0, m - k, k, m) === 0) {
        return m - k;
      }
    }
    const at = chunk.indexOf(t);
    return at < 0 ? -1 : at + m;
  }
}

class FixedLengthFramer extends AccumulatingFramer {
  constructor(private readonly size: number, maxBytes: number) {
    super(maxBytes);
    if (!Number.isInteger(size) || size < 1) throw new ValidationError('length', `${size} is not a positive integer`);
  }

  protected find(chunk: Buffer): number {
    const missing = this.size - this.len;
    return chunk.length >= missing ? missing : -1;
  }
}

class LengthPrefixFramer extends AccumulatingFramer {
  /** Prefix and body, once the prefix is complete; -1 before. */
  private total = -1;

  constructor(private readonly prefixBytes: 1 | 2 | 4, maxBytes: number) {
    super(maxBytes);
    if (prefixBytes !== 1 && prefixBytes !== 2 && prefixBytes !== 4) {
      throw new ValidationError('prefixBytes', `${String(prefixBytes)} is not 1, 2 or 4`);
    }
  }

  protected find(chunk: Buffer): number {
    if (this.total < 0) {
      const p = this.prefixBytes;
      if (this.len + chunk.length < p) return -1;
      let body = 0;
      for (let i = 0; i < p; i++) body = body * 256 + ((i < this.len ? this.store[i] : chunk[i - this.len]) as number);
      this.total = p + body;
      // Refused as soon as the prefix announces too much, not after buffering up to the limit.
      if (this.total > this.maxBytes) this.tooLarge();
    }
    const missing = this.total - this.len;
    return chunk.length >= missing ? missing : -1;
  }

  protected override reset(): void {
    super.reset();
    this.total = -1;
  }
}

/**
 * A response ends at the first byte after which the bytes so far match. Most patterns only ever go
 * on matching once they match (nothing looks at where the input ends), so a whole chunk is tested at
 * once and the end found by bisection; a trailing `$` is dropped for that, since the first prefix
 * ending in a match of X is the first one matching X$. Other patterns ($ inside, \b, lookahead) are
 * tested after every byte. Unlike the other rules this one makes a string of each chunk, since
 * regular expressions run on strings.
 */
class PatternFramer extends AccumulatingFramer {
  private readonly pattern: RegExp;
  private readonly monotone: boolean;
  private text = '';

  constructor(pattern: RegExp, maxBytes: number) {
    super(maxBytes);
    // `g` would make test() stateful; the other flags keep their meaning.
    const flags = pattern.flags.replace('g', '');
    const stripped = withoutTrailingEnd(pattern.source);
    this.monotone = !END_SENSITIVE.test(stripped);
    this.pattern = new RegExp(this.monotone ? stripped : pattern.source, flags);
  }

  protected find(chunk: Buffer): number {
    const before = this.text.length;
    this.text += chunk.toString('latin1');
    const all = this.text.length;
    if (this.monotone) {
      if (!this.matches(all)) return -1;
      let lo = before + 1;
      let hi = all;
      while (lo < hi) {
        const mid = (lo + hi) >>> 1;
        if (this.matches(mid)) hi = mid;
        else lo = mid + 1;
      }
      return this.ended(before, lo);
    }
    for (let k = before + 1; k <= all; k++) if (this.matches(k)) return this.ended(before, k);
    return -1;
  }

  protected override reset(): void {
    super.reset();
    this.text = '';
  }

  private matches(prefix: number): boolean {
    this.pattern.lastIndex = 0;
    return this.pattern.test(prefix === this.text.length ? this.text : this.text.slice(0, prefix));
  }

  private ended(before: number, end: number): number {
    this.text = this.text.slice(0, end);
    return end - before;
  }
}

/** Assertions whose answer can change when more input follows. */
const END_SENSITIVE = /\$|\\[bB]|\(\?[=!]/;

/** The source without a final unescaped `$`. */
function withoutTrailingEnd(source: string): string {
  if (!source.endsWith('$')) return source;
  let backslashes = 0;
  for (let i = source.length - 2; i >= 0 && source[i] === '\\'; i--) backslashes++;
  return backslashes % 2 === 0 ? source.slice(0, -1) : source;
}

class IdleGapFramer extends AccumulatingFramer {
  constructor(private readonly gapMs: number, maxBytes: number) {
    super(maxBytes);
    if (!(gapMs > 0) || !Number.isFinite(gapMs)) throw new ValidationError('gapMs', `${gapMs} is not a positive number of ms`);
  }

  override get idleGapMs(): number {
    return this.gapMs;
  }

  protected find(): number {
    return -1;
  }
}

/**
 * A Modbus RTU response: its length follows from the function code (and byte count), so it ends
 * there; only a function code with no fixed length ends at the inter-frame gap. A known length is
 * not cut at the gap because a software line (a pty, a USB adapter's latency timer) may pause
 * longer than 1.75 ms inside a frame; a length byte corrupted upwards ends at the command timeout
 * instead, which answers 0x0B just the same. The CRC is the exchange's to check.
 */
class ModbusRtuFramer extends AccumulatingFramer {
  private byGap = false;
  /** The first bytes, which tell the length, gathered across chunks without allocating. */
  private readonly head = Buffer.alloc(4);

  constructor(private readonly gapMs: number, maxBytes: number) {
    super(maxBytes);
    if (!(gapMs > 0) || !Number.isFinite(gapMs)) throw new ValidationError('gapMs', `${gapMs} is not a positive number of ms`);
  }

  override get idleGapMs(): number | undefined {
    return this.byGap ? this.gapMs : undefined;
  }

  protected find(chunk: Buffer): number {
    let known: number;
    if (this.len >= 4) known = rtuResponseLength(this.store, this.len);
    else {
      this.store.copy(this.head, 0, 0, this.len);
      const n = chunk.copy(this.head, this.len, 0, 4 - this.len);
      known = rtuResponseLength(this.head, this.len + n);
    }
    if (known === LENGTH_BY_GAP) this.byGap = true;
    if (known === LENGTH_BY_GAP || known === LENGTH_NEEDS_MORE) return -1;
    const missing = known - this.len;
    return chunk.length >= missing ? missing : -1;
  }

  protected override reset(): void {
    super.reset();
    this.byGap = false;
  }
}

/** A framer for one response at a time under `rule`, none of them longer than maxBytes. */
export function createResponseFramer(rule: ResponseRule, maxBytes: number): ResponseFramer {
  switch (rule.kind) {
    case 'terminator':
      return new TerminatorFramer(rule.terminator, maxBytes);
    case 'fixedLength':
      return new FixedLengthFramer(rule.length, maxBytes);
    case 'lengthPrefix':
      return new LengthPrefixFramer(rule.prefixBytes, maxBytes);
    case 'pattern':
      return new PatternFramer(rule.pattern, maxBytes);
    case 'idleGap':
      return new IdleGapFramer(rule.gapMs, maxBytes);
    case 'modbusRtu':
      return new ModbusRtuFramer(rule.gapMs, maxBytes);
  }
}
