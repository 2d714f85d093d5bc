import * as fs from 'node:fs';
import * as path from 'node:path';
import type { ListEndpointsResponse } from '../../src/proto/types';
import { startPlaintextControlPlane, startSecureControlPlane } from '../common/mesh-cli';
import { accepts, BIN, Child, freePort, waitFor } from './children';
import { BAUD_RATE } from './line-settings';
import { profileEnv, profileNodeArgs } from './profile-args';

const HOST_ID = 'bench-gw';
const WORKLOAD_ID = 'bench-app';
const BINDING = 'bench-data-path';

/**
 * Where the app reaches the virtual device: a raw or RFC 2217 TCP port, a pty linked at a path, or
 * a one-hop Unix socket the agent serves itself (owned by the benchmark's own uid).
 */
export type VirtualEnd = { protocol: 'raw' | 'rfc2217'; port: number } | { protocol: 'pty'; path: string } | { protocol: 'one-hop'; socket: string };

/** The binding of the benchmark's device to its workload, at the line every path uses. */
export function bindingYaml(device: string, end: VirtualEnd): string {
  const where =
    end.protocol === 'pty'
      ? `protocol: pty, path: ${end.path}, mode: "0600"`
      : end.protocol === 'one-hop'
        ? `protocol: raw, oneHop: true, path: ${end.socket}, owner: "${process.getuid?.() ?? 0}"`
        : `protocol: ${end.protocol}, listen: 127.0.0.1:${end.port}`;
  return [
    'kind: Binding',
    `name: ${BINDING}`,
    `workload: ${WORKLOAD_ID}`,
    `device: { host: ${HOST_ID}, path: ${device} }`,
    `virtual: { name: ${BINDING}, ${where} }`,
    'policy: { sharing: exclusive }',
    `serial: { baudRate: ${BAUD_RATE}, dataBits: 8, parity: none, stopBits: 1, flowControl: none }`,
    '',
  ].join('\n');
}

export interface MeshOptions {
  /** `plaintext`: every process with --insecure, to show what mTLS costs on the path. */
  security?: 'mtls' | 'plaintext';
  /** The app opens a virtual serial port linked here (protocol pty) instead of a TCP port. */
  ptyPath?: string;
  /** What the virtual device's TCP port speaks when there is no `ptyPath`. */
  tcpProtocol?: 'raw' | 'rfc2217';
  /** One hop: the app connects to the agent's own Unix socket here, and no sidecar runs. */
  oneHopSocket?: string;
  /** Sidecar and agent run with the CPU profiler, --trace-gc and the loop probe, their files here (see profile.ts). */
  profileDir?: string;
}

/**
 * The whole mesh as an operator runs it, each part its own process started through the CLI at
 * the default log level (info, pinned so that the caller's DEVICEMESH_LOG_LEVEL cannot change the
 * figures): control plane, an agent watching `watch` (the glob of the pty's device link), a
 * sidecar, and the binding applied with `devicemesh apply`. The app connects to
 * 127.0.0.1:`listenPort`, its virtual device, or with `ptyPath` opens the sidecar's pty there, or
 * with `oneHopSocket` connects to the agent's own Unix socket there (and no sidecar runs).
 */
export class DeviceMesh {
  private constructor(
    readonly listenPort: number,
    readonly controlPlane: Child,
    readonly agent: Child,
    readonly sidecar: Child | undefined,
  ) {}

  static async start(dir: string, watch: string, device: string, options: MeshOptions = {}): Promise<DeviceMesh> {
    const { security = 'mtls', ptyPath, tcpProtocol = 'raw', oneHopSocket, profileDir } = options;
    const [cpPort, cpAdmin, agentPort, agentAdmin, sidecarAdmin, listenPort] = await Promise.all(Array.from({ length: 6 }, () => freePort()));
    const cp = `127.0.0.1:${cpPort}`;
    const env: NodeJS.ProcessEnv = { ...process.env, DEVICEMESH_LOG_LEVEL: 'info' };
    const start = (name: string, args: string[]): Child => {
      const profiled = profileDir !== undefined && (name === 'agent' || name === 'sidecar');
      const nodeArgs = profiled ? profileNodeArgs(profileDir, name) : [];
      const childEnv = profiled ? { ...env, ...profileEnv(profileDir, name) } : env;
      return Child.spawn(name, process.execPath, [...nodeArgs, BIN, ...args], path.join(dir, `${name}.log`), childEnv);
    };
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
    const sidecar = oneHopSocket
      ? undefined
      : start('sidecar', ['sidecar', '--workload-id', WORKLOAD_ID, '--control-plane', cp, '--admin', `127.0.0.1:${sidecarAdmin}`, ...credentials(workloadTokenFile)]);
    const mesh = new DeviceMesh(listenPort, controlPlane, agent, sidecar);
    try {
      const exited = (): Error | undefined => controlPlane.exitError() ?? agent.exitError() ?? sidecar?.exitError();
      const present = async (): Promise<boolean> => {
        const { endpoints } = JSON.parse(await cli(['get', 'endpoints', '-o', 'json', '--control-plane', cp])) as ListEndpointsResponse;
        return endpoints.some((e) => e.path === device && e.state === 'ENDPOINT_STATE_PRESENT');
      };
      await waitFor(`${device} to be PRESENT in the register`, present, 30_000, exited);
      const file = path.join(dir, 'binding.yaml');
      const end: VirtualEnd = ptyPath ? { protocol: 'pty', path: ptyPath } : oneHopSocket ? { protocol: 'one-hop', socket: oneHopSocket } : { protocol: tcpProtocol, port: listenPort };
      fs.writeFileSync(file, bindingYaml(device, end));
      await cli(['apply', '-f', file, '--control-plane', cp]);
      if (ptyPath) await waitFor(`the virtual serial port at ${ptyPath}`, () => fs.existsSync(ptyPath), 30_000, exited);
      else if (oneHopSocket) await waitFor(`the agent's one-hop socket at ${oneHopSocket}`, () => accepts(oneHopSocket), 30_000, exited);
      else await waitFor('the virtual device to listen', () => accepts(listenPort), 30_000, exited);
      return mesh;
    } catch (err) {
      await mesh.stop();
      throw err;
    }
  }

  processes(): Child[] {
    return [...(this.sidecar ? [this.sidecar] : []), this.agent, this.controlPlane];
  }

  async stop(): Promise<void> {
    await Promise.all([this.sidecar?.stop(), this.agent.stop(), this.controlPlane.stop()]);
  }
}
