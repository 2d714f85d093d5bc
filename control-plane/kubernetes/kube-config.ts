import * as fs from 'node:fs';
import { KubeConfig } from '@kubernetes/client-node';
import { errorMessage, ValidationError } from '../../src/errors';

/** The Lease the replicas of one mesh share to pick their status writer. */
export const STATUS_WRITER_LEASE = 'devicemesh-status-writer';

/**
 * How the controller reaches the API server: a kubeconfig file when given, else the pod's
 * service account when running in a cluster, else $KUBECONFIG or ~/.kube/config, as kubectl does.
 */
export function loadKubeConfig(file: string | undefined): KubeConfig {
  const kc = new KubeConfig();
  try {
    if (file !== undefined) {
      if (!fs.existsSync(file)) throw new Error(`${file} does not exist`);
      kc.loadFromFile(file);
    } else {
      kc.loadFromDefault();
    }
  } catch (err) {
    throw new ValidationError('--kubeconfig', `cannot load the Kubernetes configuration: ${errorMessage(err)}`);
  }
  if (!kc.getCurrentCluster()) throw new ValidationError('--kubeconfig', 'names no current cluster (not in a cluster, and no kubeconfig with a current context)');
  return kc;
}
