import type * as grpc from '@grpc/grpc-js';
import type { Logger } from '../../src/log';
import type { ListProxiesResponse } from '../../src/proto/types';
import type { ProxyStatusTracker } from '../proxy-status';
import { unary } from '../../src/grpc/grpc-errors';

/** `devicemesh.v1.Status`: who is on the discovery stream and what they have applied. */
export function statusService(proxies: ProxyStatusTracker, log: Logger): grpc.UntypedServiceImplementation {
  return {
    ListProxies: unary(log, 'ListProxies', (): ListProxiesResponse => ({ proxies: proxies.list() })),
  };
}
