import * as grpc from '@grpc/grpc-js';
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
export interface RegistryClient extends grpc.Client {
  reportHost: Unary<{ hostId: string; endpoints: PhysicalEndpoint[] }, ReportHostResponse>;
  reportLoad: Unary<ReportLoadRequest, ReportLoadResponse>;
}

export function registryClient(address: string, credentials?: grpc.ChannelCredentials): RegistryClient {
  const Ctor = serviceClient('devicemesh.v1.Registry');
  return new Ctor(address, credentials ?? grpc.credentials.createInsecure(), credentials ? SPIFFE_CHANNEL_OPTIONS : {}) as unknown as RegistryClient;
}
