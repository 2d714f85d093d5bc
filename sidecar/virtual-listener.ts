import type * as net from 'node:net';
import type { Logger } from '../src/log';
import type { Mapping } from '../src/proto/types';
import { formatHostPort, parseHostPort } from '../src/util/address';

/** A served virtual device, whatever its protocol: what VirtualDevices needs of it. */
export interface VirtualListener {
  readonly address: string;
  readonly mapping: Mapping;
  readonly connectionCount: number;
  /** Same listen address, new content: connections made from now on use it. */
  update(mapping: Mapping): void;
  /** A roaming mapping was withdrawn (its device is on no gateway): the listener stays, its held apps wait for `update`. */
  withdraw?(): void;
  flushStats(): void;
  /** What /config_dump shows of the device beside its mapping, where there is more than the mapping says. */
  state?(): Record<string, string>;
  /** Stops accepting at once; ends the connections still live after `timeoutMs`. */
  drain(timeoutMs: number, reason: string): Promise<void>;
  /** Stops accepting and ends every live connection, telling the agent why. */
  close(reason: string): Promise<void>;
}

/** Waits until `live()` is 0 or `timeoutMs` has passed: a draining listener's grace period. */
export async function drainPeriod(live: () => number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (live() > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
}

/**
 * Binds a virtual device's TCP listener to the mapping's listen address: resolves with the bound
 * host:port (port 0 resolved), rejects with the bind error (e.g. EADDRINUSE). Errors after that
 * are logged as `what` failing; the listening itself is logged once.
 */
export function bindAppListener(server: net.Server, mapping: Mapping, log: Logger, what: string): Promise<string> {
  const { host, port } = parseHostPort(mapping.virtual?.listen ?? '');
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host, port }, () => {
      server.off('error', reject);
      server.on('error', (err) => log.error({ mapping: mapping.id, error: err.message }, `${what} listener failed`));
      const address = formatHostPort({ host, port: (server.address() as net.AddressInfo).port });
      log.info({ mapping: mapping.id, listen: address, agent: mapping.agentAddress }, `${what} listening`);
      resolve(address);
    });
  });
}
