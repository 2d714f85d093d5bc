import * as fs from 'node:fs';
import * as path from 'node:path';
import type { ListEndpointsResponse } from '../../src/proto/types';
import { startSecureControlPlane } from '../common/mesh-cli';
import { accepts, BIN, Child, freePort, waitFor } from '../data-path/children';

const HOST_ID = 'bench-gw';
const WORKLOAD_ID = 'bench-app';
const BINDING = 'bench-sharing';
/** The policy of acceptance 6: one queue in front of the device, responses framed by the AT terminator. */
export const SHARED_POLICY = 'sharing: shared, requestTerminator: "\\r", response: { terminator: "OK\\r\\n" }, queueDepth: 256, perConsumerQueue: 4';

/** The shared binding's virtual protocol, policy and (optionally) line settings, as YAML flow text. */
export interface SharedBinding {
  protocol: string;
  policy: string;
  serial?: string;
  /** The binding's device settings (a camera's width, height, fps …), as YAML flow text. */
  settings?: string;
}

/** What the agent runs with beyond the watch: more flags, and variables over the benchmark's environment. */
export interface AgentExtras {
  args?: readonly string[];
  env?: NodeJS.ProcessEnv;
}

const AT_BINDING: SharedBinding = { protocol: 'raw', policy: SHARED_POLICY };

/**
 * The mesh as an operator runs it, each part its own process at log level info: control plane, an
 * agent watching `watch`, one sidecar, and a shared binding of `device` (RAW with the AT policy unless told) applied with
 * `devicemesh apply`. Every app connection to 127.0.0.1:`listenPort` is one consumer of the device.
 */
export class SharedMesh {
  private constructor(
    readonly listenPort: number,
    /** The agent's admin port (its /stats/prometheus). */
    readonly agentAdmin: number,
    private readonly children: Child[],
  ) {}

  static async start(dir: string, watch: string, device: string, binding: SharedBinding = AT_BINDING, agent: AgentExtras = {}): Promise<SharedMesh> {
    const [cpPort, cpAdmin, agentPort, agentAdmin, sidecarAdmin, listenPort] = await Promise.all(Array.from({ length: 6 }, () => freePort()));
    const cp = `127.0.0.1:${cpPort}`;
    const env: NodeJS.ProcessEnv = { ...process.env, DEVICEMESH_LOG_LEVEL: 'info' };
    const start = (name: string, args: string[], extraEnv: NodeJS.ProcessEnv = {}): Child =>
      Child.spawn(name, process.execPath, [BIN, ...args], path.join(dir, `${name}.log`), { ...env, ...extraEnv });
    const dataDir = path.join(dir, 'data');
    // Secure as an operator runs it: the agent and the sidecar join with tokens made by the CLI.
    const { controlPlane, cli, hostTokenFile, workloadTokenFile } = await startSecureControlPlane(
      start,
      { grpc: cp, admin: `127.0.0.1:${cpAdmin}` },
      dataDir,
      { hostId: HOST_ID, workloadId: WORKLOAD_ID },
    );
    const children = [
      controlPlane,
      start('agent', [
        'agent', '--host-id', HOST_ID, '--control-plane', cp, '--listen', `127.0.0.1:${agentPort}`, '--watch', watch, '--admin', `127.0.0.1:${agentAdmin}`,
        '--token-file', hostTokenFile, ...(agent.args ?? []),
      ], agent.env),
      start('sidecar', ['sidecar', '--workload-id', WORKLOAD_ID, '--control-plane', cp, '--admin', `127.0.0.1:${sidecarAdmin}`, '--token-file', workloadTokenFile]),
    ];
    const mesh = new SharedMesh(listenPort, agentAdmin, children);
    try {
      const exited = (): Error | undefined => children.map((c) => c.exitError()).find((e) => e !== undefined);
      await waitFor(
        `${device} to be PRESENT in the register`,
        async () => {
          const { endpoints } = JSON.parse(await cli(['get', 'endpoints', '-o', 'json', '--control-plane', cp])) as ListEndpointsResponse;
          return endpoints.some((e) => e.path === device && e.state === 'ENDPOINT_STATE_PRESENT');
        },
        30_000,
        exited,
      );
      const file = path.join(dir, 'binding.yaml');
      fs.writeFileSync(
        file,
        [
          'kind: Binding',
          `name: ${BINDING}`,
          `workload: ${WORKLOAD_ID}`,
          `device: { host: ${HOST_ID}, path: ${device} }`,
          `virtual: { name: ${BINDING}, protocol: ${binding.protocol}, listen: 127.0.0.1:${listenPort} }`,
          `policy: { ${binding.policy} }`,
          ...(binding.serial === undefined ? [] : [`serial: { ${binding.serial} }`]),
          ...(binding.settings === undefined ? [] : [`settings: { ${binding.settings} }`]),
          '',
        ].join('\n'),
      );
      await cli(['apply', '-f', file, '--control-plane', cp]);
      await waitFor('the virtual device to listen', () => accepts(listenPort), 30_000, exited);
      return mesh;
    } catch (err) {
      await mesh.stop();
      throw err;
    }
  }

  async stop(): Promise<void> {
    await Promise.all(this.children.map((c) => c.stop()));
  }
}
