import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { startAgent } from '../../agent/main';
import { startControlPlane } from '../../control-plane/main';
import { startSidecar } from '../../sidecar/main';
import { UnavailableError } from '../../src/errors';
import { createLogger, openLogOutput } from '../../src/log';
import type { ApplyRequest } from '../../src/proto/types';
import { parseHostPort } from '../../src/util/address';
import { ControlPlaneClient } from '../control-plane-client';
import { type FlagSpec, parseFlags } from '../flags';
import { LOG_FLAGS, runUntilSignalled } from './processes';
import { type MemberSecurityOptions, warnInsecure } from '../../src/security/member-security';

export const DEMO_FLAGS: readonly FlagSpec[] = [
  { name: 'virtual-listen', kind: 'address', default: '127.0.0.1:7000', help: 'where the app connects to the simulated modem' },
  { name: 'control-plane-listen', kind: 'address', default: '127.0.0.1:15010', help: 'control plane gRPC address' },
  { name: 'control-plane-admin', kind: 'address', default: '127.0.0.1:15000', help: 'control plane admin address' },
  { name: 'agent-listen', kind: 'address', default: '127.0.0.1:15020', help: 'agent socket-plane address' },
  { name: 'agent-admin', kind: 'address', default: '127.0.0.1:15002', help: 'agent admin address' },
  { name: 'sidecar-admin', kind: 'address', default: '127.0.0.1:15001', help: 'sidecar admin address' },
  { name: 'data-dir', kind: 'string', help: 'control plane data directory (default: a fresh temporary one)' },
  { name: 'insecure', kind: 'boolean', help: 'run the mesh in plaintext without authentication (prints a warning)' },
  { name: 'verbose', kind: 'boolean', help: 'the mesh\'s logs on stderr instead of in --log-file' },
  { name: 'log-file', kind: 'string', help: 'where the mesh\'s logs go unless --verbose (default: devicemesh-demo.log in the data directory)' },
  ...LOG_FLAGS,
];

const HOST = 'demo-gw';
const WORKLOAD = 'demo-app';

/**
 * The whole mesh in one process: a control plane, an agent serving a simulated AT modem, a
 * sidecar, and a raw binding between them. Each part is the same code the separate commands run,
 * and they talk to each other over real gRPC and TCP on loopback.
 */
export async function demo(args: readonly string[], out: NodeJS.WritableStream): Promise<void> {
  const { values } = parseFlags('demo', args, DEMO_FLAGS);
  const dataDir = values['data-dir'] ?? fs.mkdtempSync(path.join(os.tmpdir(), 'devicemesh-demo-'));
  const virtualListen = values['virtual-listen'] as string;
  const insecure = values.insecure === 'true';
  if (insecure) warnInsecure('demo');
  // A newcomer sees the banner, not a screen of logs: those go to a file the banner names.
  const logFile = values.verbose === 'true' ? undefined : path.resolve(values['log-file'] ?? path.join(dataDir, 'devicemesh-demo.log'));
  const logs = openLogOutput(values['log-format'] as string, logFile ? { file: logFile } : { fd: 2 });

  const controlPlane = await startControlPlane({
    listen: values['control-plane-listen'] as string,
    admin: values['control-plane-admin'] as string,
    dataDir,
    insecure,
    log: createLogger('control-plane', {}, logs),
  });
  // The demo is its own operator: it mints the agent's and the sidecar's join tokens.
  const security = controlPlane.security;
  const join = (kind: 'host' | 'workload', id: string): MemberSecurityOptions =>
    security ? { token: security.createToken(kind, id) } : { insecure: true };
  const agent = await startAgent({
    hostId: HOST,
    controlPlane: controlPlane.grpcAddress,
    listen: values['agent-listen'] as string,
    watch: [],
    simulate: ['modem'],
    admin: values['agent-admin'] as string,
    security: join('host', HOST),
    log: createLogger('agent', { hostId: HOST }, logs),
  });
  const sidecar = await startSidecar({
    workloadId: WORKLOAD,
    controlPlane: controlPlane.grpcAddress,
    admin: values['sidecar-admin'] as string,
    security: join('workload', WORKLOAD),
    log: createLogger('sidecar', { workloadId: WORKLOAD }, logs),
  });
  const all = {
    close: async (): Promise<void> => {
      await sidecar.close();
      await agent.close();
      await controlPlane.close();
    },
  };

  const binding: ApplyRequest = {
    policies: [],
    bindings: [
      {
        name: 'demo-modem',
        workload: WORKLOAD,
        device: { host: HOST, path: 'sim:modem0', id: '' },
        virtual: { workloadId: WORKLOAD, name: 'modem0', protocol: 'VIRTUAL_PROTOCOL_RAW', listen: virtualListen },
        policy: null,
        policyRef: '',
        settings: {},
        serial: {
          baudRate: 115200,
          dataBits: 8,
          parity: 'PARITY_NONE',
          stopBits: 'STOP_BITS_ONE',
          flowControl: 'FLOW_CONTROL_NONE',
        },
      },
    ],
  };
  const client = new ControlPlaneClient(
    controlPlane.grpcAddress,
    5000,
    security ? { caPem: security.caPem, operatorToken: fs.readFileSync(security.operatorTokenFile, 'utf8').trim() } : { insecure: true },
  );
  const clientFlags = security
    ? `--control-plane ${controlPlane.grpcAddress} --ca-file ${security.caFile} --operator-token-file ${security.operatorTokenFile}`
    : `--control-plane ${controlPlane.grpcAddress} --insecure`;
  try {
    await waitFor(async () => {
      await client.call('Bindings', 'Apply', binding);
    }, 'the binding to be accepted');
    await waitFor(() => probe(virtualListen), `the virtual device on ${virtualListen}`);
  } catch (err) {
    await all.close();
    throw err;
  } finally {
    client.close();
  }

  out.write(
    [
      '',
      'devicemesh demo is running:',
      `  control plane   grpc ${controlPlane.grpcAddress}   admin http://${controlPlane.adminAddress}/config_dump`,
      `  agent           host ${HOST}, simulated modem sim:modem0, socket plane ${agent.socketPlaneAddress}`,
      `  sidecar         workload ${WORKLOAD}, admin http://${sidecar.adminAddress}/ready`,
      `  binding         demo-modem: ${WORKLOAD}/modem0 (raw) -> ${HOST}:sim:modem0`,
      '',
      `Connect to the modem:   nc ${parseHostPort(virtualListen).host} ${parseHostPort(virtualListen).port}     (type AT, ATI, AT+GMR)`,
      `Look around:            devicemesh get endpoints | bindings | mappings | proxies ${clientFlags}`,
      security ? `  (mTLS: CA ${security.caFile}, operator credential ${security.operatorTokenFile})` : '  (INSECURE: plaintext, no authentication)',
      logFile ? `The mesh's logs:       ${logFile}   (tail -f it, or run with --verbose to see them here)` : 'The mesh\'s logs follow on stderr (--verbose).',
      'Stop with Ctrl-C.',
      '',
    ].join('\n'),
  );
  await runUntilSignalled(all);
}

async function waitFor(attempt: () => Promise<void>, what: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      await attempt();
      return;
    } catch (err) {
      last = err;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  throw new UnavailableError(`timed out waiting for ${what}: ${last instanceof Error ? last.message : String(last)}`);
}

function probe(address: string): Promise<void> {
  const { host, port } = parseHostPort(address);
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host, port }, () => {
      socket.destroy();
      resolve();
    });
    socket.once('error', reject);
  });
}
