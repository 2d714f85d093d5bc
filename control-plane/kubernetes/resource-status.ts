import type { BindingStatus, Policy } from '../../src/proto/types';

/** What `kubectl get bindings` shows: the phase of the resource in the mesh. */
export type ResourcePhase = 'MAPPED' | 'PENDING' | 'REFUSED' | 'APPLIED';

/** The `.status` the controller writes on a Binding or DevicePolicy resource. */
export interface ResourceStatus {
  phase: ResourcePhase;
  message: string;
  /** A Binding's mapping id once it is MAPPED; '' otherwise. */
  mappingId: string;
  /** The metadata.generation this status is about. */
  observedGeneration: number;
}

/** What the control plane knows of one resource, for its status. */
export interface StatusInputs {
  kind: 'Binding' | 'DevicePolicy';
  name: string;
  generation: number;
  /** Why the control plane refused this generation; undefined when it took it. */
  refusal: string | undefined;
  bindings: readonly BindingStatus[];
  policies: readonly Policy[];
}

const BINDING_PHASE: Readonly<Record<string, ResourcePhase>> = {
  BINDING_PHASE_MAPPED: 'MAPPED',
  BINDING_PHASE_PENDING: 'PENDING',
  BINDING_PHASE_REFUSED: 'REFUSED',
};

/** A resource's status from the control plane's state (pure). */
export function resourceStatus(inputs: StatusInputs): ResourceStatus {
  const status = (phase: ResourcePhase, message: string, mappingId = ''): ResourceStatus => ({ phase, message, mappingId, observedGeneration: inputs.generation });
  if (inputs.refusal !== undefined) return status('REFUSED', inputs.refusal);
  if (inputs.kind === 'DevicePolicy') {
    return inputs.policies.some((p) => p.name === inputs.name) ? status('APPLIED', 'policy applied') : status('PENDING', 'not applied yet');
  }
  const binding = inputs.bindings.find((b) => b.binding?.name === inputs.name);
  if (!binding) return status('PENDING', 'not applied yet');
  const phase = Object.hasOwn(BINDING_PHASE, binding.phase) ? (BINDING_PHASE[binding.phase] as ResourcePhase) : 'PENDING';
  return status(phase, binding.message || (phase === 'MAPPED' ? 'mapped' : 'pending'), phase === 'MAPPED' ? binding.mappingId : '');
}
