import { ValidationError } from '../../src/errors';
import { parseIdentityArgument } from '../../src/security/spiffe-id';
import { type FlagSpec, parseFlags } from '../flags';
import { CLIENT_FLAGS, clientFor } from './resources';

export const IDENTITY_FLAGS: readonly FlagSpec[] = [...CLIENT_FLAGS];

const IDENTITY_USAGE = 'usage: devicemesh identity revoke host/ID|workload/ID';

/**
 * `devicemesh identity revoke host/ID|workload/ID`: with the operator credential, every certificate
 * of the identity stops working (renewals, discovery, socket-plane sessions).
 */
export async function identity(args: readonly string[], out: NodeJS.WritableStream): Promise<void> {
  const flags = parseFlags('identity', args, IDENTITY_FLAGS);
  const [verb, arg, extra] = flags.positionals;
  if (verb !== 'revoke' || arg === undefined || extra !== undefined) throw new ValidationError('', IDENTITY_USAGE);
  parseIdentityArgument(arg);
  const client = clientFor(flags.values);
  try {
    const res = await client.call<{ spiffeId: string; certificates: number }>('Identity', 'RevokeIdentity', { identity: arg });
    out.write(`${res.spiffeId} revoked (${res.certificates} certificate${res.certificates === 1 ? '' : 's'})\n`);
  } finally {
    client.close();
  }
}
