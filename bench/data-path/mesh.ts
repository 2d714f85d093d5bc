import * as fs from 'node:fs';
import * as path from 'node:path';
import type { ListEndpointsResponse } from '../../src/proto/types';
import { startPlaintextControlPlane, startSecureControlPlane } from '../common/mesh-cli';
import { accepts, BIN, Child, freePort, waitFor } from './children';
import { BAUD_RATE } from './line-settings';

const HOST_ID = 'bench-gw';
const WORKLOAD_ID = 'bench-app';
const BINDING = 'bench-data-path';

/** Where the app reaches the virtual device: a raw or RFC 2217 TCP port, or a pty linked at a path. */
export type VirtualEnd = { protocol: 'raw' | 'rfc2217'; port: number } | { protocol: 'pty'; path: string };

/** The binding of the benchmark's device to its workload, at the line every path uses. */
export function bindingYaml(device: string, end: VirtualEnd): string {
  const where = end.protocol === 'pty' ? `path: ${end.path}, mode: "0600"` : `listen: 127.0.0.1:${end.port}`;
  return [
    'kind: Binding',
    `name: ${BINDING}`,
    `workload: ${WORKLOAD_ID}`,
    `device: { host: ${HOST_ID}, path: ${device} }`,
    `virtual: { name: ${BINDING}, protocol: ${end.protocol}, ${where} }`,
    'policy: { sharing: exclusive }',
    `serial: { baudRate: ${BAUD_RATE}, dataBits: 8, parity: none, stopBits: 1, flowControl: none }`,
    '',
  ].join('\n');
}

/**
 * The whole mesh as an operator runs it, each part its own process started through the CLI at
 * the default log level (info, pinned so that the caller's DEVICEMESH_LOG_LEVEL cannot change the
 * figures): control plane, an agent watching `watch` (the glob of the pty's device link), a
 * sidecar, and the binding applied with `devicemesh apply`. The app connects to
 * 127.0.0.1:`listenPort`, its virtual device, or with `ptyPath` opens the sidecar's pty there.
 */
export class DeviceMesh {
  private constructor(
    readonly listenPort: number,
    readonly controlPlane: Child,
    readonly agent: Child,
    readonly sidecar: Child,
  ) {}

  /**
   * `plaintext`: every process with --insecure, to show what mTLS costs on the path. `tcpProtocol`:
   * what the virtual device's TCP port speaks when there is no `ptyPath`.
   */
  static async start(
    dir: string,
    watch: string,
    device: string,
    security: 'mtls' | 'plaintext' = 'mtls',
    ptyPath?: string,
    tcpProtocol: 'raw' | 'rfc2217' = 'raw',
  ): Promise<DeviceMesh> {
    const [cpPort, cpAdmin, agentPort, agentAdmin, sidecarAdmin, listenPort] = await Promise.all(Array.from({ length: 6 }, () => freePort()));
    const cp = `127.0.0.1:${cpPort}`;
    const env: NodeJS.ProcessEnv = { ...process.env, DEVICEMESH_LOG_LEVEL: 'info' };
    const start = (name: string, args: string[]): Child => Child.spawn(name, process.execPath, [BIN, ...args], path.join(dir, `${name}.log`), env);
    const dataDir = path.join(dir, 'data');
    const listen = { grpc: cp, admin: `127.0.0.1:${cpAdmin}` };
    const members = { hostId: HOST_ID, workloadId: WORKLOAD_ID };
    // Secure as an operator runs it: the agent and the sidecar join with tokens made by the CLI.
    const { controlPlane, cli, hostTokenFile, workloadTokenFile } =
      security === 'mtls' ? await startSecureControlPlane(start, listen, dataDir, members) : startPlaintextControlPlane(start, listen, dataDir);
    const credentials = (tokenFile: string): string[] => (security === 'mtls' ? ['--token-file', tokenFile] : ['--insecure']);
    const agent = start('agent', [
      'agent', '--host-id', HOST_ID, '--control-plane', cp, '--listen', `127.0.0.1:${agentPort}`,
      '--watch', watch, '--admin', `127.0.0.1:${agentAdmin}`, ...credentials(hostTokenFile),
    ]);
    const sidecar = start('sidecar', [
      'sidecar', '--workload-id', WORKLOAD_ID, '--control-plane', cp, '--admin', `127.0.0.1:${sidecarAdmin}`, ...credentials(workloadTokenFile),
    ]);
    const mesh = new DeviceMesh(listenPort, controlPlane, agent, sidecar);
    try {
      const exited = (): Error | undefined => controlPlane.exitError() ?? agent.exitError() ?? sidecar.exitError();
      const present = async (): Promise<boolean> => {
        const { endpoints } = JSON.parse(await cli(['get', 'endpoints', '-o', 'json', '--control-plane', cp])) as ListEndpointsResponse;
        return endpoints.some((e) => e.path === device && e.state === 'ENDPOINT_STATE_PRESENT');
      };
      await waitFor(`${device} to be PRESENT in the register`, present, 30_000, exited);
      const file = path.join(dir, 'binding.yaml');
      fs.writeFileSync(file, bindingYaml(device, ptyPath ? { protocol: 'pty', path: ptyPath } : { protocol: tcpProtocol, port: listenPort }));
      await cli(['apply', '-f', file, '--control-plane', cp]);
      if (ptyPath) await waitFor(`the virtual serial port at ${ptyPath}`, () => fs.existsSync(ptyPath), 30_000, exited);
      else await waitFor('the virtual device to listen', () => accepts(listenPort), 30_000, exited);
      return mesh;
    } catch (err) {
      await mesh.stop();
      throw err;
    }
  }

  processes(): Child[] {
    return [this.sidecar, this.agent, this.controlPlane];
  }

  async stop(): Promise<void> {
    await Promise.all([this.sidecar.stop(), this.agent.stop(), this.controlPlane.stop()]);
  }
}
