import * as grpc from '@grpc/grpc-js';
import { DeviceMeshError, type ErrorCode, UnavailableError } from '../src/errors';
import { serviceClient } from '../src/proto/load';

type UnaryMethod = (
  request: object,
  options: grpc.CallOptions,
  callback: (err: grpc.ServiceError | null, response: unknown) => void,
) => void;

const CODE_NAMES: Partial<Record<grpc.status, ErrorCode>> = {
  [grpc.status.INVALID_ARGUMENT]: 'INVALID_DOCUMENT',
  [grpc.status.NOT_FOUND]: 'NOT_FOUND',
  [grpc.status.ALREADY_EXISTS]: 'ALREADY_EXISTS',
  [grpc.status.PERMISSION_DENIED]: 'PERMISSION_DENIED',
  [grpc.status.UNAVAILABLE]: 'UNAVAILABLE',
  [grpc.status.DEADLINE_EXCEEDED]: 'UNAVAILABLE',
};

/** A unary call to one of the control plane's devicemesh.v1 services, as a promise. */
export class ControlPlaneClient {
  private readonly clients = new Map<string, grpc.Client>();

  constructor(
    private readonly address: string,
    private readonly timeoutMs = 5000,
  ) {}

  call<Res>(service: string, method: string, request: object): Promise<Res> {
    let client = this.clients.get(service);
    if (!client) {
      const Ctor = serviceClient(`devicemesh.v1.${service}`);
      client = new Ctor(this.address, grpc.credentials.createInsecure());
      this.clients.set(service, client);
    }
    const fn = (client as unknown as Record<string, UnaryMethod | undefined>)[method];
    if (typeof fn !== 'function') throw new DeviceMeshError('INTERNAL', `no method ${service}/${method}`);
    const deadline = new Date(Date.now() + this.timeoutMs);
    return new Promise<Res>((resolve, reject) => {
      fn.call(client, request, { deadline }, (err, res) => {
        if (!err) {
          resolve(res as Res);
          return;
        }
        if (err.code === grpc.status.UNAVAILABLE || err.code === grpc.status.DEADLINE_EXCEEDED) {
          reject(new UnavailableError(`control plane at ${this.address} is unreachable (${err.details || err.message})`));
          return;
        }
        reject(new DeviceMeshError(CODE_NAMES[err.code as grpc.status] ?? 'INTERNAL', err.details || err.message));
      });
    });
  }

  close(): void {
    for (const c of this.clients.values()) c.close();
  }
}
