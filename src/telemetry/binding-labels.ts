import type { Mapping } from '../proto/types';
import type { Labels } from './stats';

/**
 * The labels of a binding's series on every process: its mapping, the binding's name and the
 * physical device, so that one query joins the sidecar's, the agent's and the control plane's.
 */
export function bindingLabels(mapping: Pick<Mapping, 'id' | 'binding' | 'physicalId'>): Labels {
  return { mapping: mapping.id, binding: mapping.binding, device: mapping.physicalId };
}
