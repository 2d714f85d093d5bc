import { PROTOCOL, wordFor } from '../documents/enum-names';
import type { VirtualEndpoint } from '../proto/types';

/** How a virtual device is reached, for people: `rfc2217://127.0.0.1:7000`, `pty:///dev/ttyDM0`. */
export function virtualAddress(v: VirtualEndpoint): string {
  return `${wordFor(PROTOCOL, v.protocol)}://${v.protocol === 'VIRTUAL_PROTOCOL_PTY' ? v.path : v.listen}`;
}
