import { ProtocolError } from '../errors';
import { FrameType, HEADER_SIZE, isFrameType, MAX_PAYLOAD } from './frame';

export type FrameHandler = (type: FrameType, session: number, payload: Buffer) => void;

/**
 * Incremental decoder: feed it TCP chunks in any split, it calls back once per whole frame.
 * A payload that lies within one chunk is handed out as a view (no copy); only frames split
 * across chunks are joined, once, when complete. Throws ProtocolError on a frame that cannot be
 * valid; after that the decoder is unusable, as is the connection.
 */
export class FrameDecoder {
  private pending: Buffer[] = [];
  private pendingLength = 0;
  private failed = false;

  constructor(private readonly onFrame: FrameHandler) {}

  push(chunk: Buffer): void {
    if (this.failed) throw new ProtocolError('decoder already failed');
    let data = chunk;
    if (this.pendingLength > 0) {
      this.pending.push(chunk);
      this.pendingLength += chunk.length;
      if (this.pendingLength < this.needed()) return;
      data = Buffer.concat(this.pending, this.pendingLength);
      this.pending = [];
      this.pendingLength = 0;
    }
    let offset = 0;
    while (data.length - offset >= HEADER_SIZE) {
      const length = data.readUInt32BE(offset);
      const type = data.readUInt8(offset + 4);
      this.check(length, type);
      const end = offset + HEADER_SIZE + length;
      if (end > data.length) break;
      const session = data.readUInt32BE(offset + 5);
      this.onFrame(type as FrameType, session, data.subarray(offset + HEADER_SIZE, end));
      offset = end;
    }
    if (offset < data.length) {
      const rest = data.subarray(offset);
      this.pending.push(rest);
      this.pendingLength = rest.length;
    }
  }

  /** Bytes needed before the pending frame is whole (header first, then the frame). */
  private needed(): number {
    if (this.pendingLength < HEADER_SIZE) return HEADER_SIZE;
    const head = this.pending.length === 1 ? this.pending[0]! : Buffer.concat(this.pending, HEADER_SIZE);
    const length = head.readUInt32BE(0);
    this.check(length, head.readUInt8(4));
    return HEADER_SIZE + length;
  }

  private check(length: number, type: number): void {
    if (!isFrameType(type)) {
      this.failed = true;
      throw new ProtocolError(`unknown frame type 0x${type.toString(16).padStart(2, '0')}`);
    }
    if (length > MAX_PAYLOAD) {
      this.failed = true;
      throw new ProtocolError(`frame of ${length} bytes exceeds the limit of ${MAX_PAYLOAD}`);
    }
  }
}
