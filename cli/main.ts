import { DeviceMeshError, errorMessage, ValidationError } from '../src/errors';
import { usage } from './flags';

const HELP = `devicemesh: a service mesh for physical devices

usage: devicemesh COMMAND [flags]

  control-plane   run the control plane
  agent           run a host agent (devices on this gateway)
  sidecar         run a workload's sidecar
  apply -f FILE   create or update Binding / Policy documents
  delete binding|policy NAME
  get endpoints|bindings|mappings|proxies [-o json]
  describe binding NAME [-o json]
                  a binding's mapping, effective policy, proxies, live rates, recent errors
  token create --host ID | --workload ID [--ttl D] [--reusable] | token list | token delete ID
                  join tokens: single-use unless --reusable; deleting one revokes what it issued
  identity revoke host/ID|workload/ID
                  every certificate of the identity stops working
  demo            the whole mesh in one command, with a simulated modem

Every flag can also be set by its DEVICEMESH_* environment variable, and control-plane, agent
and sidecar read a YAML file of their flags with --config FILE (flags and environment win).
The control plane serves TLS: client commands take --ca-file and, to write, --operator-token-file
(both in the control plane's data directory), or --insecure against an --insecure control plane.
"devicemesh COMMAND --help" shows a command's flags.
`;

interface Command {
  run(args: readonly string[]): Promise<void>;
  help: string;
}

/**
 * Each command's module is loaded when that command runs: a client command does not pay for
 * loading the control plane (the Kubernetes client alone is most of a full load), nor an agent
 * for the control plane's.
 */
const COMMANDS: Record<string, () => Promise<Command>> = {
  'control-plane': async () => {
    const m = await import('./commands/processes');
    return { run: m.controlPlane, help: usage('control-plane', '[flags]', m.CONTROL_PLANE_FLAGS) };
  },
  agent: async () => {
    const m = await import('./commands/processes');
    return { run: m.agent, help: usage('agent', '--host-id ID [flags]', m.AGENT_FLAGS) };
  },
  sidecar: async () => {
    const m = await import('./commands/processes');
    return { run: m.sidecar, help: usage('sidecar', '--workload-id ID [flags]', m.SIDECAR_FLAGS) };
  },
  apply: async () => {
    const m = await import('./commands/resources');
    return { run: (a) => m.apply(a, process.stdout), help: usage('apply', '-f FILE', m.APPLY_FLAGS) };
  },
  delete: async () => {
    const m = await import('./commands/resources');
    return { run: (a) => m.remove(a, process.stdout), help: usage('delete', 'binding|policy NAME', m.DELETE_FLAGS) };
  },
  get: async () => {
    const m = await import('./commands/resources');
    return { run: (a) => m.get(a, process.stdout), help: usage('get', 'endpoints|bindings|mappings|proxies', m.GET_FLAGS) };
  },
  describe: async () => {
    const m = await import('./commands/describe');
    return { run: (a) => m.describeResource(a, process.stdout), help: usage('describe', 'binding NAME', m.DESCRIBE_FLAGS) };
  },
  token: async () => {
    const m = await import('./commands/tokens');
    return { run: (a) => m.token(a, process.stdout), help: usage('token', 'create|list|delete', m.TOKEN_FLAGS) };
  },
  identity: async () => {
    const m = await import('./commands/identity');
    return { run: (a) => m.identity(a, process.stdout), help: usage('identity', 'revoke host/ID|workload/ID', m.IDENTITY_FLAGS) };
  },
  demo: async () => {
    const m = await import('./commands/demo');
    return { run: (a) => m.demo(a, process.stdout), help: usage('demo', '[flags]', m.DEMO_FLAGS) };
  },
};

/** The `devicemesh` binary. Errors end as one line on stderr and a non-zero exit. */
export function main(argv: readonly string[]): void {
  const [name, ...args] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(HELP);
    return;
  }
  const load = Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : undefined;
  if (!load) {
    fail(new ValidationError('', `unknown command "${name}" (try devicemesh --help)`));
    return;
  }
  load().then(
    (command) => {
      if (args.includes('--help') || args.includes('-h')) {
        process.stdout.write(command.help + '\n');
        return;
      }
      command.run(args).then(
        () => process.exit(0),
        (err: unknown) => fail(err),
      );
    },
    (err: unknown) => fail(err),
  );
}

function fail(err: unknown): void {
  const line = errorMessage(err).replace(/\s*\n\s*/g, ' ');
  process.stderr.write(`devicemesh: ${line}\n`);
  const usageError = err instanceof ValidationError || (err instanceof DeviceMeshError && err.code === 'INVALID_ARGUMENT');
  process.exit(usageError ? 2 : 1);
}
