import { generateFrom, type GeneratedMappings } from '../../control-plane/mapping-generator';
import { Register } from '../../control-plane/register';
import type { Binding, Host, Mapping, PhysicalEndpoint, Policy } from '../../src/proto/types';

export interface MappingInputs {
  bindings: readonly Binding[];
  policies: readonly Policy[];
  endpoints: readonly PhysicalEndpoint[];
  hosts: readonly Host[];
  /** The control-plane version being generated. */
  version: string;
  /** The mappings of the previous generation: unchanged content keeps its version. */
  previous: readonly Mapping[];
}

/**
 * The mapping table from scratch, out of plain lists: the reference the control plane's indexed,
 * incremental `generateFrom` must agree with (the control plane itself only ever generates from its draft).
 */
export function generateMappings(inputs: MappingInputs): GeneratedMappings {
  const register = new Register(inputs.endpoints, inputs.hosts);
  return generateFrom({
    bindings: inputs.bindings,
    policies: new Map(inputs.policies.map((p) => [p.name, p])),
    select: (selector) => register.select(selector),
    byDeviceId: (id) => register.byDeviceId(id),
    host: (id) => register.host(id),
    version: inputs.version,
    previous: { mappings: inputs.previous },
  });
}
