import * as fs from 'node:fs';
import type * as grpc from '@grpc/grpc-js';
import { errorMessage, ValidationError } from '../errors';
import type { Logger } from '../log';
import { CredentialManager, type MemberIdentity } from './credential-manager';

/** How an agent or a sidecar proves who it is: its flags. */
export interface MemberSecurityOptions {
  /** Plaintext, no authentication (the --insecure flag). */
  insecure?: boolean;
  /** A join token (--token). */
  token?: string;
  /** A file holding the join token (--token-file), read on each join attempt. */
  tokenFile?: string;
  /** Where the key and certificate persist (--identity-dir). */
  identityDir?: string;
}

/** A member's credentials; undefined parts mean --insecure. */
export interface MemberCredentials {
  manager: CredentialManager | undefined;
  /** Channels made with these wait for the first certificate. */
  channel: grpc.ChannelCredentials | undefined;
  /** Resolves once the process has a certificate; rejects when it cannot join (a refused --token). */
  ready: Promise<void>;
  close(): void;
}

/** The warning every process run with --insecure prints, once, on stderr. */
export function warnInsecure(component: string): void {
  process.stderr.write(`WARNING: devicemesh ${component} is running with --insecure: plaintext, no authentication, anyone who can reach it is trusted\n`);
}

/** Starts joining the mesh (or loading a stored certificate) unless insecure. */
export function memberCredentials(
  options: MemberSecurityOptions,
  controlPlane: string,
  identity: MemberIdentity,
  log: Logger,
): MemberCredentials {
  if (options.insecure) return { manager: undefined, channel: undefined, ready: Promise.resolve(), close: () => undefined };
  if (options.token && options.tokenFile) throw new ValidationError('--token', 'give either --token or --token-file, not both');
  const { tokenFile } = options;
  const readToken = (): string | undefined => {
    if (options.token) return options.token;
    if (!tokenFile) return undefined;
    try {
      return fs.readFileSync(tokenFile, 'utf8').trim() || undefined;
    } catch (err) {
      log.debug({ tokenFile, error: errorMessage(err) }, 'token file not readable yet');
      return undefined;
    }
  };
  if (!options.token && !tokenFile && !options.identityDir) {
    throw new ValidationError('--token', 'is required to join the mesh (or --token-file, --identity-dir with a stored certificate, or --insecure)');
  }
  const manager = new CredentialManager({
    controlPlane,
    identity,
    token: readToken,
    tokenReplaceable: tokenFile !== undefined,
    ...(options.identityDir ? { identityDir: options.identityDir } : {}),
    log: log.child({ module: 'identity' }),
  });
  const ready = manager.start();
  // Whoever awaits `ready` sees the error; this keeps it from being an unhandled rejection meanwhile.
  ready.catch(() => undefined);
  return { manager, channel: manager.channelCredentials(), ready, close: () => manager.close() };
}
