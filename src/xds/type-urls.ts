import type { Mapping } from '../proto/types';

/** Type URLs of the resources devicemesh carries on Envoy's discovery service. */
export const TYPE_URL_PREFIX = 'type.googleapis.com/';

export const MAPPING_TYPE_URL = `${TYPE_URL_PREFIX}devicemesh.v1.Mapping` as const;

/**
 * What the resource of each type URL decodes to: the object src/proto/types.ts declares for its
 * message, which test/unit/proto/types-conformance checks against the .proto files.
 */
export interface ResourceTypes {
  [MAPPING_TYPE_URL]: Mapping;
}

/** The proto message name behind a type URL, e.g. `devicemesh.v1.Mapping`. */
export function messageNameOf(typeUrl: string): string {
  return typeUrl.startsWith(TYPE_URL_PREFIX) ? typeUrl.slice(TYPE_URL_PREFIX.length) : typeUrl;
}
