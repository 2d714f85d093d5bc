import { ValidationError } from '../errors';

export interface HostPort {
  host: string;
  port: number;
}

/** Parses `host:port` or `[v6]:port`; port 0 is allowed (pick a free one). */
export function parseHostPort(value: string): HostPort {
  const m = /^(?:\[([^\]]+)\]|([^:\s]+)):(\d{1,5})$/.exec(value ?? '');
  if (!m) throw new ValidationError('', `"${value}" is not host:port`);
  const port = Number(m[3]);
  if (port > 65_535) throw new ValidationError('', `port ${port} is out of range`);
  return { host: (m[1] ?? m[2]) as string, port };
}

export function formatHostPort(hp: HostPort): string {
  return hp.host.includes(':') ? `[${hp.host}]:${hp.port}` : `${hp.host}:${hp.port}`;
}

/**
 * One `host:port`, or replicas of one service separated by commas (`a:15010,b:15010`), in order;
 * spaces around each are ignored, anything else that is not host:port is a ValidationError.
 */
export function parseAddressList(value: string): string[] {
  const addresses = value.split(',').map((a) => a.trim());
  for (const address of addresses) parseHostPort(address);
  return addresses;
}
