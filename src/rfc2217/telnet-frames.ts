import { escapeIac } from './iac-escape';
import { IAC, SB, SE, type TelnetVerb } from './telnet-codes';

/** IAC <verb> <option>. */
export function negotiation(verb: TelnetVerb, option: number): Buffer {
  return Buffer.from([IAC, verb, option]);
}

/** IAC SB <option> <payload, IAC doubled> IAC SE. */
export function subnegotiation(option: number, payload: Buffer): Buffer {
  const body = escapeIac(Buffer.concat([Buffer.from([option]), payload]));
  return Buffer.concat([Buffer.from([IAC, SB]), body, Buffer.from([IAC, SE])]);
}
