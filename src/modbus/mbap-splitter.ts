import { mbapLength } from './mbap';

/**
 * Cuts a Modbus TCP byte stream into whole ADUs by their MBAP length. Throws ProtocolError (from
 * mbapLength) at the first header that is not MBAP, and drops what it held: after that the
 * stream has no frame boundary left, so the connection ends, as a Modbus TCP server does.
 */
export class MbapSplitter {
  private held: Buffer | undefined;

  /** The complete ADUs in order; keeps the unfinished rest. */
  push(chunk: Buffer): Buffer[] {
    const bytes = this.held === undefined ? chunk : Buffer.concat([this.held, chunk]);
    this.held = undefined;
    const adus: Buffer[] = [];
    let at = 0;
    for (;;) {
      const length = mbapLength(bytes, at);
      if (length === undefined || bytes.length - at < length) break;
      // A copy: the chunk's buffer may be reused by whoever handed it in.
      adus.push(Buffer.from(bytes.subarray(at, at + length)));
      at += length;
    }
    if (at < bytes.length) this.held = Buffer.from(bytes.subarray(at));
    return adus;
  }

  /** Bytes of the unfinished ADU. */
  get pending(): number {
    return this.held?.length ?? 0;
  }
}
