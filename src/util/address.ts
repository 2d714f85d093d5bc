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
