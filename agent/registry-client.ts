import * as grpc from '@grpc/grpc-js';
import { serviceClient } from '../src/proto/load';
import { SPIFFE_CHANNEL_OPTIONS } from '../src/security/control-plane-identity';
import type { PhysicalEndpoint, ReportLoadRequest, ReportLoadResponse } from '../src/proto/types';
import { parseAddressList } from '../src/util/address';

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

/** Failures that say "this replica is not there", not "this request is wrong": the next call tries the next replica. */
const REPLICA_DOWN = new Set<number>([grpc.status.UNAVAILABLE, grpc.status.DEADLINE_EXCEEDED]);

/**
 * A Registry client for `address`: one host:port, or control-plane replicas separated by commas.
 * With replicas, a call that finds its replica gone moves the next call on to the next one; the
 * callers already retry with backoff.
 */
export function registryClient(address: string, credentials?: grpc.ChannelCredentials): RegistryClient {
  const Ctor = serviceClient('devicemesh.v1.Registry');
  const clients = parseAddressList(address).map((a) => new Ctor(a, credentials ?? grpc.credentials.createInsecure(), credentials ? SPIFFE_CHANNEL_OPTIONS : {}) as unknown as RegistryClient);
  let current = 0;
  const rotating = <Req, Res>(method: 'reportHost' | 'reportLoad'): Unary<Req, Res> => {
    return (req, options, cb) => {
      const used = current;
      const client = clients[used] as RegistryClient;
      (client[method] as unknown as Unary<Req, Res>).call(client, req, options, (err, res) => {
        if (err && REPLICA_DOWN.has(err.code) && current === used) current = (used + 1) % clients.length;
        cb(err, res);
      });
    };
  };
  return {
    reportHost: rotating('reportHost'),
    reportLoad: rotating('reportLoad'),
    close: () => {
      for (const c of clients) c.close();
    },
  };
}
