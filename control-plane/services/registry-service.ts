import * as grpc from '@grpc/grpc-js';
import { DeviceMeshError, errorMessage, ValidationError } from '../../src/errors';
import type { Logger } from '../../src/log';
import type { EndpointEvent, ListEndpointsResponse, PhysicalEndpoint, ReportLoadRequest, ReportLoadResponse } from '../../src/proto/types';
import type { LoadReports } from '../bandwidth/load-reports';
import { checkLoadReport } from '../request-checks';
import type { ControlPlaneState } from '../state';
import { toServiceError, unary } from '../../src/grpc/grpc-errors';

interface ListEndpointsRequest {
  hostId: string;
}
interface GetEndpointRequest {
  id: string;
}
interface RegisterEndpointRequest {
  endpoint: PhysicalEndpoint | null;
}
interface DeregisterEndpointRequest {
  id: string;
  markAbsent: boolean;
}
interface ReportHostRequest {
  hostId: string;
  endpoints: PhysicalEndpoint[];
}
interface WatchEndpointsRequest {
  hostId: string;
}

/** Events a watcher may have unread before it is cut off and must watch again from a snapshot. */
const WATCH_BACKLOG_LIMIT = 4096;

/** `devicemesh.v1.Registry`: the register of physical endpoints and the agents' load reports, fed by the agents. */
export function registryService(state: ControlPlaneState, loads: LoadReports, log: Logger): grpc.UntypedServiceImplementation {
  return {
    ListEndpoints: unary(log, 'ListEndpoints', (req: ListEndpointsRequest): ListEndpointsResponse => ({
      endpoints: state.endpoints(req.hostId || undefined),
      hosts: state.hosts(req.hostId || undefined),
    })),
    GetEndpoint: unary(log, 'GetEndpoint', (req: GetEndpointRequest): PhysicalEndpoint => {
      if (!req.id) throw new ValidationError('id', 'is required');
      return state.endpoint(req.id);
    }),
    RegisterEndpoint: unary(log, 'RegisterEndpoint', (req: RegisterEndpointRequest): Promise<PhysicalEndpoint> => {
      if (!req.endpoint) throw new ValidationError('endpoint', 'is required');
      return state.registerEndpoint(req.endpoint);
    }),
    DeregisterEndpoint: unary(log, 'DeregisterEndpoint', async (req: DeregisterEndpointRequest): Promise<object> => {
      if (!req.id) throw new ValidationError('id', 'is required');
      await state.deregisterEndpoint(req.id, req.markAbsent);
      return {};
    }),
    ReportHost: unary(log, 'ReportHost', (req: ReportHostRequest) => state.reportHost(req.hostId, req.endpoints)),
    ReportLoad: unary(log, 'ReportLoad', (req: ReportLoadRequest): ReportLoadResponse => {
      checkLoadReport(req);
      loads.put(req);
      const known = new Set(state.mappings({ hostId: req.hostId }).map((m) => m.id));
      return { unknownMappingIds: req.bindings.map((b) => b.mappingId).filter((id) => !known.has(id)) };
    }),
    WatchEndpoints: (call: grpc.ServerWritableStream<WatchEndpointsRequest, EndpointEvent>): void => {
      const hostId = call.request.hostId;
      const mine = (event: EndpointEvent): boolean => !hostId || event.endpoint?.hostId === hostId;
      // Taken, subscribed and written in one tick, so no change falls between snapshot and events.
      const snapshot = state.endpoints(hostId || undefined);
      const stop = state.watchEndpoints((event) => {
        if (!mine(event)) return;
        // A watcher that does not read would make us buffer every change for ever.
        if (call.writableLength >= WATCH_BACKLOG_LIMIT + snapshot.length) {
          stop();
          call.emit('error', toServiceError(new DeviceMeshError('RESOURCE_EXHAUSTED', 'endpoint watcher is too slow; watch again')));
          return;
        }
        call.write(event);
      });
      call.on('cancelled', stop);
      call.on('close', stop);
      call.on('error', (err: Error) => {
        stop();
        log.debug({ error: errorMessage(err) }, 'endpoint watch ended');
      });
      for (const endpoint of snapshot) call.write({ type: 'TYPE_SNAPSHOT', endpoint });
    },
  };
}
