import * as grpc from '@grpc/grpc-js';
import { isReplicaDown, ReplicaSet } from '../src/grpc/replica-set';
import { serviceClient } from '../src/proto/load';
import { SPIFFE_CHANNEL_OPTIONS } from '../src/security/control-plane-identity';
import type { PhysicalEndpoint, ReportLoadRequest, ReportLoadResponse } from '../src/proto/types';

type Unary<Req, Res> = (req: Req, options: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res?: Res) => void) => void;

export interface ReportHostResponse {
  version: string;
  registered: number;
  markedAbsent: number;
}

/** The control plane's Registry as the agent calls it: its inventory and its load. */
export interface RegistryClient {
  reportHost: Unary<{ hostId: string; endpoints: PhysicalEndpoint[] }, ReportHostResponse>;
  reportLoad: Unary<ReportLoadRequest, ReportLoadResponse>;
  close(): void;
}

/**
 * A Registry client for `address`: one host:port, or control-plane replicas separated by commas.
 * With replicas, a call that finds its replica gone moves the next call on to the next one; the
 * callers already retry with backoff.
 */
export function registryClient(address: string, credentials?: grpc.ChannelCredentials): RegistryClient {
  const Ctor = serviceClient('devicemesh.v1.Registry');
  const replicas = new ReplicaSet(address, (a) => new Ctor(a, credentials ?? grpc.credentials.createInsecure(), credentials ? SPIFFE_CHANNEL_OPTIONS : {}) as unknown as RegistryClient);
  const rotating = <Req, Res>(method: 'reportHost' | 'reportLoad'): Unary<Req, Res> => {
    return (req, options, cb) => {
      const used = replicas.current();
      (used.client[method] as unknown as Unary<Req, Res>).call(used.client, req, options, (err, res) => {
        if (err && isReplicaDown(err)) replicas.failed(used);
        cb(err, res);
      });
    };
  };
  return {
    reportHost: rotating('reportHost'),
    reportLoad: rotating('reportLoad'),
    close: () => {
      for (const c of replicas.clients()) c.close();
    },
  };
}
