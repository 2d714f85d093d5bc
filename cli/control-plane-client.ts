import * as fs from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import { DeviceMeshError, errorMessage, UnavailableError, ValidationError } from '../src/errors';
import { errorCodeOf } from '../src/grpc/grpc-errors';
import { serviceClient } from '../src/proto/load';
import { SPIFFE_CHANNEL_OPTIONS, spiffeServerCheck } from '../src/security/control-plane-identity';
import { parseHostPort } from '../src/util/address';
import { checkControlPlaneCertificate } from './tls-preflight';

type UnaryMethod = (
  request: object,
  metadata: grpc.Metadata,
  options: grpc.CallOptions,
  callback: (err: grpc.ServiceError | null, response: unknown) => void,
) => void;

/** How the CLI reaches the control plane: plaintext (--insecure), or TLS trusting `caPem`, with the operator's bearer token if it has one. */
export type ClientSecurity = { insecure: true } | { insecure?: false; caPem: string; operatorToken?: string };

/** Security from the CLI's flag values (--insecure, --ca-file, --operator-token[-file]); a missing CA file is a clear error. */
export function clientSecurity(values: Readonly<Record<string, string | undefined>>): ClientSecurity {
  if (values.insecure === 'true') return { insecure: true };
  const caFile = values['ca-file'];
  if (!caFile) {
    throw new ValidationError('', 'the control plane serves TLS: give --ca-file (DEVICEMESH_CA_FILE, e.g. <data-dir>/ca/bundle.crt) or --insecure');
  }
  const caPem = readFile(caFile, '--ca-file');
  let operatorToken = values['operator-token'];
  const tokenFile = values['operator-token-file'];
  if (!operatorToken && tokenFile) operatorToken = readFile(tokenFile, '--operator-token-file').trim();
  return operatorToken ? { caPem, operatorToken } : { caPem };
}

function readFile(file: string, flag: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new ValidationError('', `${flag}: cannot read ${file}: ${errorMessage(err)}`);
  }
}

/** A unary call to one of the control plane's devicemesh.v1 services, as a promise. */
export class ControlPlaneClient {
  private readonly clients = new Map<string, grpc.Client>();
  private readonly credentials: grpc.ChannelCredentials;
  /** The TLS pre-flight, made once per client: a certificate failure is named, not left to time out. */
  private verified: Promise<void> | undefined;

  constructor(
    private readonly address: string,
    private readonly timeoutMs = 5000,
    private readonly security: ClientSecurity = { insecure: true },
  ) {
    this.credentials = security.insecure
      ? grpc.credentials.createInsecure()
      : grpc.credentials.createSsl(Buffer.from(security.caPem), null, null, { checkServerIdentity: spiffeServerCheck({ kind: 'control-plane' }) });
  }

  async call<Res>(service: string, method: string, request: object): Promise<Res> {
    if (this.security.insecure) return this.unary<Res>(service, method, request);
    this.verified ??= this.preflight(this.security.caPem).catch((err: unknown) => {
      this.verified = undefined;
      throw err;
    });
    // The call starts beside the pre-flight rather than after it, a handshake's wait sooner: its own
    // connection is checked against the same CA and identity, so nothing reaches a control plane that
    // the pre-flight refuses, and the pre-flight's error, which names the failure, still wins.
    const call = this.unary<Res>(service, method, request);
    try {
      await this.verified;
    } catch (err) {
      call.catch(() => undefined);
      throw err;
    }
    return call;
  }

  private preflight(caPem: string): Promise<void> {
    let address;
    try {
      address = parseHostPort(this.address);
    } catch {
      // A gRPC target that is not host:port (a resolver URI): the call reports what fails.
      return Promise.resolve();
    }
    return checkControlPlaneCertificate(address, caPem, Math.min(this.timeoutMs, 3000));
  }

  private unary<Res>(service: string, method: string, request: object): Promise<Res> {
    let client = this.clients.get(service);
    if (!client) {
      const Ctor = serviceClient(`devicemesh.v1.${service}`);
      client = new Ctor(this.address, this.credentials, this.security.insecure ? {} : SPIFFE_CHANNEL_OPTIONS);
      this.clients.set(service, client);
    }
    const fn = (client as unknown as Record<string, UnaryMethod | undefined>)[method];
    if (typeof fn !== 'function') throw new DeviceMeshError('INTERNAL', `no method ${service}/${method}`);
    const deadline = new Date(Date.now() + this.timeoutMs);
    const metadata = new grpc.Metadata();
    if (!this.security.insecure && this.security.operatorToken) metadata.set('authorization', `Bearer ${this.security.operatorToken}`);
    return new Promise<Res>((resolve, reject) => {
      fn.call(client, request, metadata, { deadline }, (err, res) => {
        if (!err) {
          resolve(res as Res);
          return;
        }
        if (err.code === grpc.status.UNAVAILABLE || err.code === grpc.status.DEADLINE_EXCEEDED) {
          const hint = this.security.insecure ? '; if it serves TLS, give --ca-file instead of --insecure' : '';
          reject(new UnavailableError(`control plane at ${this.address} is unreachable (${err.details || err.message})${hint}`));
          return;
        }
        if (err.code === grpc.status.UNAUTHENTICATED && !this.security.insecure && !this.security.operatorToken) {
          reject(new DeviceMeshError('UNAUTHENTICATED', `${err.details} (give --operator-token-file, e.g. <data-dir>/operator.token)`));
          return;
        }
        reject(new DeviceMeshError(errorCodeOf(err.code), err.details || err.message));
      });
    });
  }

  close(): void {
    for (const c of this.clients.values()) c.close();
  }
}
