import { ProtocolError } from '../errors';
import { DO, DONT, IAC, SB, SE, type TelnetVerb, WILL, WONT } from './telnet-codes';

/** Longest subnegotiation accepted (option byte and payload, unescaped); RFC 2217's longest is a signature. */
export const MAX_SUBNEGOTIATION = 512;

/** What a Telnet byte stream holds, in order. */
export type TelnetItem =
  /** App bytes, IAC IAC already made one 0xFF; a view of the pushed chunk. */
  | { kind: 'data'; data: Buffer }
  | { kind: 'negotiate'; verb: TelnetVerb; option: number }
  | { kind: 'subnegotiation'; option: number; payload: Buffer }
  /** Any other IAC <code> (NOP, BRK, AYT, a stray SE …). */
  | { kind: 'command'; code: number }
  /** The framing is broken (truncated or oversized subnegotiation); parsing carries on after it. */
  | { kind: 'error'; error: ProtocolError };

const enum State {
  Data,
  Iac,
  Verb,
  Sub,
  SubIac,
  /** Skipping an oversized subnegotiation up to its IAC SE. */
  Skip,
  SkipIac,
}

function isVerb(byte: number): byte is TelnetVerb {
  return byte === WILL || byte === WONT || byte === DO || byte === DONT;
}

/**
 * An incremental Telnet parser over an app's bytes: push chunks as they arrive, in any split,
 * and get the items they complete. It never throws; broken framing is reported as an item.
 */
export class TelnetParser {
  private state = State.Data;
  private verb: TelnetVerb = WILL;
  private readonly sub = Buffer.allocUnsafe(MAX_SUBNEGOTIATION);
  private subLength = 0;

  /** Inside IAC SB … not yet closed by IAC SE: the bridge bounds how long a client may stay here. */
  get inSubnegotiation(): boolean {
    return this.state === State.Sub || this.state === State.SubIac || this.state === State.Skip || this.state === State.SkipIac;
  }

  /**
   * Takes the chunk over: its data is unescaped in place (IAC IAC moved down to one 0xFF), so a
   * run of data stays one view of the chunk however many 0xFF it holds, and nothing is allocated.
   */
  push(chunk: Buffer): TelnetItem[] {
    const items: TelnetItem[] = [];
    let i = 0;
    /** Where the next data byte goes (never past i) and where the current run began. */
    let w = 0;
    let runStart = 0;
    const endRun = (): void => {
      if (w > runStart) items.push({ kind: 'data', data: chunk.subarray(runStart, w) });
      runStart = w;
    };
    while (i < chunk.length) {
      switch (this.state) {
        case State.Data: {
          const at = chunk.indexOf(IAC, i);
          const end = at < 0 ? chunk.length : at;
          if (w !== i) chunk.copyWithin(w, i, end);
          w += end - i;
          i = end;
          if (at >= 0) {
            this.state = State.Iac;
            i++;
          }
          break;
        }
        case State.Iac: {
          const byte = chunk[i] as number;
          i++;
          if (byte === IAC) {
            chunk[w++] = IAC;
            this.state = State.Data;
            break;
          }
          endRun();
          if (isVerb(byte)) {
            this.verb = byte;
            this.state = State.Verb;
          } else if (byte === SB) {
            this.subLength = 0;
            this.state = State.Sub;
          } else {
            items.push({ kind: 'command', code: byte });
            this.state = State.Data;
          }
          break;
        }
        case State.Verb:
          items.push({ kind: 'negotiate', verb: this.verb, option: chunk[i] as number });
          i++;
          this.state = State.Data;
          break;
        case State.Sub:
        case State.Skip: {
          const at = chunk.indexOf(IAC, i);
          const end = at < 0 ? chunk.length : at;
          if (this.state === State.Sub) this.collect(chunk, i, end, items);
          i = end;
          if (at >= 0) {
            this.state = this.state === State.Sub ? State.SubIac : State.SkipIac;
            i++;
          }
          break;
        }
        case State.SubIac:
        case State.SkipIac: {
          const byte = chunk[i] as number;
          const skipping = this.state === State.SkipIac;
          if (byte === IAC) {
            this.state = skipping ? State.Skip : State.Sub;
            if (!skipping) this.collect(chunk, i, i + 1, items);
            i++;
          } else if (byte === SE) {
            i++;
            this.state = State.Data;
            if (!skipping) this.finishSub(items);
          } else {
            // IAC <other> inside a subnegotiation: its IAC SE never came. The command is read as one.
            if (!skipping) items.push({ kind: 'error', error: new ProtocolError(`subnegotiation truncated by IAC ${byte}`) });
            this.state = State.Iac;
          }
          break;
        }
      }
    }
    endRun();
    return items;
  }

  private collect(chunk: Buffer, from: number, to: number, items: TelnetItem[]): void {
    if (this.subLength + (to - from) > MAX_SUBNEGOTIATION) {
      items.push({ kind: 'error', error: new ProtocolError(`subnegotiation longer than ${MAX_SUBNEGOTIATION} bytes`) });
      this.state = State.Skip;
      return;
    }
    this.subLength += chunk.copy(this.sub, this.subLength, from, to);
  }

  private finishSub(items: TelnetItem[]): void {
    if (this.subLength === 0) {
      items.push({ kind: 'error', error: new ProtocolError('empty subnegotiation (IAC SB IAC SE)') });
      return;
    }
    items.push({ kind: 'subnegotiation', option: this.sub[0] as number, payload: Buffer.from(this.sub.subarray(1, this.subLength)) });
  }
}
