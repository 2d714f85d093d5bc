import type { DeltaDiscoveryRequest } from '../../src/xds/delta-messages';
import { MAPPING_TYPE_URL } from '../../src/xds/type-urls';

/** A DeltaDiscoveryRequest for Mappings with every field at its default, then `overrides`. */
export function deltaRequest(overrides: Partial<DeltaDiscoveryRequest>): DeltaDiscoveryRequest {
  return {
    node: null,
    typeUrl: MAPPING_TYPE_URL,
    resourceNamesSubscribe: [],
    resourceNamesUnsubscribe: [],
    initialResourceVersions: {},
    responseNonce: '',
    errorDetail: null,
    ...overrides,
  };
}
