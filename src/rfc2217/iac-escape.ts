import { IAC } from './telnet-codes';

/**
 * Doubles every 0xFF (IAC) so a Telnet peer reads it as data. Returns `data` itself when it has
 * none, the common case on the data path; otherwise one copy, made segment by segment.
 */
export function escapeIac(data: Buffer): Buffer {
  let at = data.indexOf(IAC);
  if (at < 0) return data;
  let count = 0;
  for (let i = at; i >= 0; i = data.indexOf(IAC, i + 1)) count++;
  const out = Buffer.allocUnsafe(data.length + count);
  let from = 0;
  let o = 0;
  while (at >= 0) {
    // Copy through the IAC, then write it once more.
    o += data.copy(out, o, from, at + 1);
    out[o++] = IAC;
    from = at + 1;
    at = data.indexOf(IAC, from);
  }
  data.copy(out, o, from);
  return out;
}
