import type { XdsAny, XdsNode, XdsStatus } from '../proto/types';

/**
 * Envoy's incremental xDS messages as grpc-js hands them over with OBJECT_OPTIONS: camelCase
 * fields, `initial_resource_versions` as a plain object, every field present with its default.
 * Only the fields devicemesh uses; resource locators (xdstp://) are not.
 */

/** The resource name that subscribes to every resource of a type. */
export const WILDCARD = '*';

export interface DeltaDiscoveryRequest {
  node: XdsNode | null;
  typeUrl: string;
  resourceNamesSubscribe: string[];
  resourceNamesUnsubscribe: string[];
  /** On a stream's first request of a type: name → version of what the proxy already has. */
  initialResourceVersions: Record<string, string>;
  responseNonce: string;
  errorDetail: XdsStatus | null;
}

export interface XdsResource {
  name: string;
  version: string;
  resource: XdsAny | null;
}

export interface DeltaDiscoveryResponse {
  /** For debugging only in the protocol; devicemesh puts the proxy's snapshot version here. */
  systemVersionInfo: string;
  resources: XdsResource[];
  typeUrl: string;
  removedResources: string[];
  nonce: string;
  controlPlane?: { identifier: string } | null;
}
