/** Type URLs of the resources devicemesh carries on Envoy's discovery service. */
export const TYPE_URL_PREFIX = 'type.googleapis.com/';

export const MAPPING_TYPE_URL = `${TYPE_URL_PREFIX}devicemesh.v1.Mapping`;

/** The proto message name behind a type URL, e.g. `devicemesh.v1.Mapping`. */
export function messageNameOf(typeUrl: string): string {
  return typeUrl.startsWith(TYPE_URL_PREFIX) ? typeUrl.slice(TYPE_URL_PREFIX.length) : typeUrl;
}
