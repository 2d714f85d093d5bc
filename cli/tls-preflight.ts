import * as tls from 'node:tls';
import { DeviceMeshError, UnauthenticatedError } from '../src/errors';
import { spiffeServerCheck } from '../src/security/control-plane-identity';
import type { HostPort } from '../src/util/address';

/** Network failures: the gRPC call that follows reports those as the control plane being unreachable. */
const NETWORK_ERRORS = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN']);

/**
 * Makes one TLS handshake with the control plane the way the CLI's gRPC channel does (trusting
 * `caPem`, checking the server's SPIFFE ID) and names what fails in it: grpc-js only reports a
 * refused certificate as an unreachable server once its deadline has passed. Resolves undefined
 * when the server is verified, or when no handshake could be made at all (unreachable: the call
 * says so); rejects with an UnauthenticatedError naming the verification failure otherwise.
 */
export function checkControlPlaneCertificate(address: HostPort, caPem: string, timeoutMs: number): Promise<void> {
  const where = `control plane at ${address.host.includes(':') ? `[${address.host}]` : address.host}:${address.port}`;
  return new Promise<void>((resolve, reject) => {
    let connected = false;
    const socket = tls.connect({
      host: address.host,
      port: address.port,
      ca: caPem,
      ALPNProtocols: ['h2'],
      checkServerIdentity: spiffeServerCheck({ kind: 'control-plane' }),
      // No SNI: the control plane is reached by address and checked by SPIFFE ID.
      servername: '',
    });
    const timer = setTimeout(() => finish(undefined), timeoutMs);
    const finish = (err: Error | undefined): void => {
      clearTimeout(timer);
      socket.destroy();
      if (err) reject(err);
      else resolve();
    };
    socket.once('connect', () => {
      connected = true;
    });
    socket.once('secureConnect', () => finish(undefined));
    socket.once('error', (err: TlsError) => {
      if (!connected || NETWORK_ERRORS.has(err.code ?? '')) {
        finish(undefined);
        return;
      }
      finish(describe(where, err));
    });
  });
}

/** OpenSSL's errors carry a short `reason` beside a message that spells out its source file. */
type TlsError = NodeJS.ErrnoException & { reason?: string };

function describe(where: string, err: TlsError): DeviceMeshError {
  if (err instanceof DeviceMeshError) {
    return new UnauthenticatedError(`${where} presented a certificate of another identity: ${err.message}`);
  }
  const text = err.reason ?? err.message;
  const reason = err.code ? `${err.code}: ${text}` : text;
  if (err.code?.startsWith('ERR_SSL_')) {
    return new UnauthenticatedError(`${where} did not complete a TLS handshake (${reason}); if it runs with --insecure, give --insecure`);
  }
  return new UnauthenticatedError(
    `${where} presented a certificate that --ca-file does not verify (${reason}); give the bundle of that control plane, <data-dir>/ca/bundle.crt`,
  );
}
