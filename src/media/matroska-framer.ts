import { ProtocolError } from '../errors';
import { EBML_HEADER_MAX, readElementHeader } from './ebml';

export const EBML_ID = 0x1a45dfa3;
export const SEGMENT_ID = 0x18538067;
export const CLUSTER_ID = 0x1f43b675;

/** Largest element the framer holds whole (a frame of 4K MJPEG is a few MB). */
export const DEFAULT_MAX_UNIT = 32 * 1024 * 1024;

type State = 'ebml' | 'segment' | 'head' | 'body' | 'failed';

/**
 * Cuts a live Matroska stream (as ffmpeg's matroska muxer writes it to a pipe: EBML header, a
 * Segment of unknown size, Info, Tracks …, then Clusters of known size) into units: first the
 * header, everything before the first Cluster, which a consumer joining later needs before
 * anything else; then each top-level element after it whole, a Cluster being one frame (the
 * capture writes one frame per cluster). Bytes pass through unchanged, in order: the units
 * concatenated are the input.
 *
 * Malformed input (no EBML header, a size of more than 8 bytes, a cluster of unknown size, an
 * element over the limit) throws a ProtocolError, after which the framer refuses everything.
 */
export class MatroskaFramer {
  private state: State = 'ebml';
  private readonly chunks: Buffer[] = [];
  private buffered = 0;
  private readonly scratch = Buffer.allocUnsafe(EBML_HEADER_MAX);
  private readonly headerParts: Buffer[] = [];
  private headerBytes = 0;
  /** Everything before the first Cluster, once it has been seen whole. */
  header: Buffer | undefined;

  constructor(
    private readonly emit: (unit: Buffer) => void,
    private readonly maxUnit = DEFAULT_MAX_UNIT,
  ) {}

  push(chunk: Buffer): void {
    if (this.state === 'failed') throw new ProtocolError('Matroska: the stream already failed to parse');
    if (chunk.length === 0) return;
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    try {
      while (this.step());
    } catch (err) {
      this.state = 'failed';
      this.chunks.length = 0;
      this.buffered = 0;
      throw err;
    }
  }

  /** Bytes held waiting for the rest of their element. */
  get pending(): number {
    return this.buffered;
  }

  /** @returns true when it consumed something and may go on. */
  private step(): boolean {
    const peeked = this.peek();
    const element = readElementHeader(this.scratch, peeked);
    if (!element) return false;
    const { id, size, headerLength } = element;
    const whole = size === null ? Infinity : headerLength + size;
    switch (this.state) {
      case 'ebml':
        if (id !== EBML_ID) throw new ProtocolError(`Matroska: the stream starts with element 0x${id.toString(16)}, not an EBML header`);
        this.refuseUnknownSize(id, size);
        return this.takeIntoHeader(whole);
      case 'segment':
        if (id !== SEGMENT_ID) throw new ProtocolError(`Matroska: element 0x${id.toString(16)} where the Segment should start`);
        // Only the Segment's own header: its children are the units.
        return this.takeIntoHeader(headerLength);
      case 'head':
        if (id === CLUSTER_ID) {
          this.header = this.headerParts.length === 1 ? this.headerParts[0] : Buffer.concat(this.headerParts, this.headerBytes);
          this.headerParts.length = 0;
          this.state = 'body';
          this.emit(this.header as Buffer);
          return true;
        }
        this.refuseUnknownSize(id, size);
        return this.takeIntoHeader(whole);
      default:
        this.refuseUnknownSize(id, size);
        if (id === EBML_ID || id === SEGMENT_ID) throw new ProtocolError('Matroska: a second stream header inside the stream');
        if (whole > this.maxUnit) throw new ProtocolError(`Matroska: element 0x${id.toString(16)} of ${whole} bytes is over the ${this.maxUnit}-byte limit`);
        if (this.buffered < whole) return false;
        this.emit(this.take(whole));
        return true;
    }
  }

  private refuseUnknownSize(id: number, size: number | null): void {
    if (size === null) throw new ProtocolError(`Matroska: element 0x${id.toString(16)} of unknown size cannot be cut out whole`);
  }

  private takeIntoHeader(bytes: number): boolean {
    if (this.headerBytes + bytes > this.maxUnit) throw new ProtocolError(`Matroska: the stream header is over the ${this.maxUnit}-byte limit`);
    if (this.buffered < bytes) return false;
    const part = this.take(bytes);
    this.headerParts.push(part);
    this.headerBytes += part.length;
    if (this.state === 'ebml') this.state = 'segment';
    else if (this.state === 'segment') this.state = 'head';
    return true;
  }

  /** Copies up to EBML_HEADER_MAX buffered bytes into scratch, consuming nothing. */
  private peek(): number {
    let n = 0;
    for (let i = 0; i < this.chunks.length && n < EBML_HEADER_MAX; i++) {
      n += (this.chunks[i] as Buffer).copy(this.scratch, n, 0, Math.min((this.chunks[i] as Buffer).length, EBML_HEADER_MAX - n));
    }
    return n;
  }

  /** The next `n` buffered bytes: a view when one chunk holds them, else one copy. */
  private take(n: number): Buffer {
    const first = this.chunks[0] as Buffer;
    let out: Buffer;
    if (first.length >= n) {
      out = first.subarray(0, n);
      if (first.length === n) this.chunks.shift();
      else this.chunks[0] = first.subarray(n);
    } else {
      out = Buffer.allocUnsafe(n);
      let filled = 0;
      while (filled < n) {
        const chunk = this.chunks[0] as Buffer;
        const used = chunk.copy(out, filled, 0, Math.min(chunk.length, n - filled));
        filled += used;
        if (used === chunk.length) this.chunks.shift();
        else this.chunks[0] = chunk.subarray(used);
      }
    }
    this.buffered -= n;
    return out;
  }
}
