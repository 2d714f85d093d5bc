import * as path from 'node:path';
import { createToken, freePort, MeshProcess } from './processes';

/** A control plane, one agent (host gw1) watching `<dir>/tty*`, and one sidecar per workload, each its own process. */
export interface OneGatewayMesh {
  controlPlane: MeshProcess;
  agent: MeshProcess;
  sidecars: MeshProcess[];
}

/**
 * Starts them with logs named `<prefix>-control-plane`, `<prefix>-agent`, `<prefix>-sidecar-<workload>`.
 * Their join tokens are made first, with createToken's patient retries: on a loaded machine one
 * CLI run can take longer than the background provisioning's per-attempt limit. `agentArgs` go to the
 * agent last (e.g. `--simulate modem`).
 */
export async function startOneGatewayMesh(prefix: string, dir: string, cp: string, agentAdmin: number, workloads: readonly string[], agentArgs: readonly string[] = []): Promise<OneGatewayMesh> {
  const controlPlane = MeshProcess.start(`${prefix}-control-plane`, ['control-plane', '--listen', cp, '--admin', '127.0.0.1:0', '--data-dir', path.join(dir, 'data')]);
  const agent = MeshProcess.start(`${prefix}-agent`, [
    'agent', '--host-id', 'gw1', '--control-plane', cp, '--listen', `127.0.0.1:${await freePort()}`,
    '--watch', path.join(dir, 'tty*'), '--admin', `127.0.0.1:${agentAdmin}`, '--token', await createToken(cp, 'host', 'gw1', 90_000), ...agentArgs,
  ]);
  const sidecars: MeshProcess[] = [];
  for (const workload of workloads) {
    const token = await createToken(cp, 'workload', workload, 90_000);
    sidecars.push(MeshProcess.start(`${prefix}-sidecar-${workload}`, ['sidecar', '--workload-id', workload, '--control-plane', cp, '--admin', `127.0.0.1:${await freePort()}`, '--token', token]));
  }
  return { controlPlane, agent, sidecars };
}
