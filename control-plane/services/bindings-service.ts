import type * as grpc from '@grpc/grpc-js';
import type { Logger } from '../../src/log';
import type { ApplyRequest, ApplyResponse, DeleteRequest, ListBindingsResponse, ListMappingsResponse } from '../../src/proto/types';
import { checkMappingFilter } from '../request-checks';
import type { ControlPlaneState } from '../state';
import { unary } from '../../src/grpc/grpc-errors';

interface ListMappingsRequest {
  workloadId: string;
  hostId: string;
}

/** `devicemesh.v1.Bindings`: the declared state (bindings, policies) and the mappings made of it. */
export function bindingsService(state: ControlPlaneState, log: Logger): grpc.UntypedServiceImplementation {
  return {
    Apply: unary(log, 'Apply', (req: ApplyRequest): Promise<ApplyResponse> => state.apply(req)),
    Delete: unary(log, 'Delete', async (req: DeleteRequest) => ({ version: await state.delete(req.kind, req.name) })),
    List: unary(log, 'List', (): ListBindingsResponse => ({ bindings: state.bindingStatuses(), policies: state.policies() })),
    ListMappings: unary(log, 'ListMappings', (req: ListMappingsRequest): ListMappingsResponse => {
      checkMappingFilter(req);
      return { mappings: state.mappings({ workloadId: req.workloadId, hostId: req.hostId }), version: state.version() };
    }),
  };
}
