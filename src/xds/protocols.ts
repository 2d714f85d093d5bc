/**
 * The two variants of Envoy's xDS transport on the aggregated stream: state of the world
 * (StreamAggregatedResources, every response carries the whole set) and incremental
 * (DeltaAggregatedResources, per-resource versions, only the differences travel).
 */
export type AdsProtocol = 'delta' | 'sotw';
