import { errorMessage, ValidationError } from '../../src/errors';
import type { Timestamp } from '../../src/proto/types';
import { parseHostPort } from '../../src/util/address';
import { durationMs, type FlagSpec, parseFlags } from '../flags';
import { renderTable } from '../table';
import { CLIENT_FLAGS, clientFor } from './resources';

export const TOKEN_FLAGS: readonly FlagSpec[] = [
  { name: 'host', kind: 'string', help: 'create: a token for this host id (an agent)' },
  { name: 'workload', kind: 'string', help: 'create: a token for this workload id (a sidecar)' },
  { name: 'ttl', kind: 'duration', help: 'create: how long the token can be used (default 24h)' },
  { name: 'reusable', kind: 'boolean', help: 'create: the token joins any number of times until it expires (a DaemonSet\'s); default: one join' },
  { name: 'allow-address', kind: 'list', help: 'create, --host: a host:port the agent may advertise as its socket plane (repeatable; default: any)' },
  { name: 'output', short: 'o', kind: 'string', default: 'table', help: 'list: table or json' },
  ...CLIENT_FLAGS,
];

export const TOKEN_USAGE =
  'usage: devicemesh token create --host ID [--allow-address HOST:PORT]… | --workload ID [--ttl DURATION] [--reusable] | token list [-o json] | token delete ID';

interface TokenInfo {
  id: string;
  spiffeId: string;
  createdAt: Timestamp | null;
  expiresAt: Timestamp | null;
  reusable: boolean;
  usedAt: Timestamp | null;
  allowedAddresses: string[];
}

function iso(t: Timestamp | null): string {
  return t ? new Date(Number(t.seconds) * 1000).toISOString() : '';
}

function use(t: TokenInfo): string {
  if (t.reusable) return 'reusable';
  return t.usedAt ? `used ${iso(t.usedAt)}` : 'single-use';
}

/** `devicemesh token create|list|delete`: bootstrap tokens, with the operator credential. */
export async function token(args: readonly string[], out: NodeJS.WritableStream): Promise<void> {
  const flags = parseFlags('token', args, TOKEN_FLAGS);
  const [verb, arg, extra] = flags.positionals;
  const v = flags.values;
  if (verb === 'create') {
    if (arg !== undefined) throw new ValidationError('', TOKEN_USAGE);
    if ((v.host === undefined) === (v.workload === undefined)) throw new ValidationError('', 'token create: give exactly one of --host ID or --workload ID');
    const ttlSeconds = v.ttl ? Math.ceil(durationMs('ttl', v.ttl) / 1000) : 0;
    const allowedAddresses = flags.lists['allow-address'] ?? [];
    for (const a of allowedAddresses) {
      try {
        parseHostPort(a);
      } catch (err) {
        throw new ValidationError('', `flag --allow-address: ${errorMessage(err)}`);
      }
    }
    const request = {
      kind: v.host !== undefined ? 'host' : 'workload',
      id: v.host ?? v.workload,
      ttlSeconds: String(ttlSeconds),
      reusable: v.reusable === 'true',
      allowedAddresses,
    };
    const client = clientFor(v);
    try {
      const res = await client.call<{ token: string }>('Identity', 'CreateToken', request);
      out.write(`${res.token}\n`);
    } finally {
      client.close();
    }
    return;
  }
  if (verb === 'list') {
    if (arg !== undefined) throw new ValidationError('', TOKEN_USAGE);
    if (v.output !== 'table' && v.output !== 'json') throw new ValidationError('', `flag --output: "${v.output}" is not one of table, json`);
    const client = clientFor(v);
    try {
      const res = await client.call<{ tokens: TokenInfo[] }>('Identity', 'ListTokens', {});
      out.write(
        v.output === 'json'
          ? JSON.stringify(res, null, 2) + '\n'
          : renderTable(
              ['ID', 'IDENTITY', 'USE', 'CREATED', 'EXPIRES', 'ADDRESSES'],
              res.tokens.map((t) => [t.id, t.spiffeId, use(t), iso(t.createdAt), iso(t.expiresAt), t.allowedAddresses.join(',') || 'any']),
            ),
      );
    } finally {
      client.close();
    }
    return;
  }
  if (verb === 'delete') {
    if (!arg || extra !== undefined) throw new ValidationError('', 'usage: devicemesh token delete ID');
    const client = clientFor(v);
    try {
      const res = await client.call<{ revoked: string[] }>('Identity', 'DeleteToken', { id: arg });
      out.write(`token/${arg} deleted${res.revoked.length > 0 ? `; revoked ${res.revoked.join(', ')}` : ''}\n`);
    } finally {
      client.close();
    }
    return;
  }
  throw new ValidationError('', TOKEN_USAGE);
}
