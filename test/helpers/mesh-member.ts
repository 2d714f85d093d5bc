import pino from 'pino';
import * as tls from 'node:tls';
import { CredentialManager } from '../../src/security/credential-manager';
import { socketPlaneClientOptions } from '../../src/security/socket-plane-tls';
import { DEFAULT_TRUST_DOMAIN } from '../../src/security/spiffe-id';
import type { TlsMaterial } from '../../src/security/tls-identity';
import { createToken } from './processes';

/** A mesh member inside the test process: joined with a token minted through the CLI, as a sidecar or agent would be. */
export interface TestMember {
  material: TlsMaterial;
  close(): void;
}

export async function joinAs(controlPlane: string, kind: 'host' | 'workload', id: string): Promise<TestMember> {
  const token = await createToken(controlPlane, kind, id);
  const manager = new CredentialManager({ controlPlane, identity: { kind, id }, token: () => token, log: pino({ level: 'silent' }) });
  await manager.start();
  return { material: manager.current(), close: () => manager.close() };
}

/** A socket-plane TLS connection to the agent of `hostId` on 127.0.0.1:`port`, presenting `material`. */
export function dialAgent(port: number, hostId: string, material: TlsMaterial): Promise<tls.TLSSocket> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({
      host: '127.0.0.1',
      port,
      ...socketPlaneClientOptions(material, { trustDomain: DEFAULT_TRUST_DOMAIN, kind: 'host', id: hostId }),
    });
    socket.once('secureConnect', () => {
      socket.off('error', reject);
      resolve(socket);
    });
    socket.once('error', reject);
  });
}
