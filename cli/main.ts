import { DeviceMeshError, errorMessage, ValidationError } from '../src/errors';
import { demo, DEMO_FLAGS } from './commands/demo';
import { DESCRIBE_FLAGS, describeResource } from './commands/describe';
import { agent, AGENT_FLAGS, CONTROL_PLANE_FLAGS, controlPlane, sidecar, SIDECAR_FLAGS } from './commands/processes';
import { apply, APPLY_FLAGS, DELETE_FLAGS, get, GET_FLAGS, remove } from './commands/resources';
import { identity, IDENTITY_FLAGS } from './commands/identity';
import { token, TOKEN_FLAGS } from './commands/tokens';
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

const COMMANDS: Record<string, { run(args: readonly string[]): Promise<void>; help: string }> = {
  'control-plane': { run: controlPlane, help: usage('control-plane', '[flags]', CONTROL_PLANE_FLAGS) },
  agent: { run: agent, help: usage('agent', '--host-id ID [flags]', AGENT_FLAGS) },
  sidecar: { run: sidecar, help: usage('sidecar', '--workload-id ID [flags]', SIDECAR_FLAGS) },
  apply: { run: (a) => apply(a, process.stdout), help: usage('apply', '-f FILE', APPLY_FLAGS) },
  delete: { run: (a) => remove(a, process.stdout), help: usage('delete', 'binding|policy NAME', DELETE_FLAGS) },
  get: { run: (a) => get(a, process.stdout), help: usage('get', 'endpoints|bindings|mappings|proxies', GET_FLAGS) },
  describe: { run: (a) => describeResource(a, process.stdout), help: usage('describe', 'binding NAME', DESCRIBE_FLAGS) },
  token: { run: (a) => token(a, process.stdout), help: usage('token', 'create|list|delete', TOKEN_FLAGS) },
  identity: { run: (a) => identity(a, process.stdout), help: usage('identity', 'revoke host/ID|workload/ID', IDENTITY_FLAGS) },
  demo: { run: (a) => demo(a, process.stdout), help: usage('demo', '[flags]', DEMO_FLAGS) },
};

/** The `devicemesh` binary. Errors end as one line on stderr and a non-zero exit. */
export function main(argv: readonly string[]): void {
  const [name, ...args] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(HELP);
    return;
  }
  const command = COMMANDS[name];
  if (!command) {
    fail(new ValidationError('', `unknown command "${name}" (try devicemesh --help)`));
    return;
  }
  if (args.includes('--help') || args.includes('-h')) {
    process.stdout.write(command.help + '\n');
    return;
  }
  command.run(args).then(
    () => process.exit(0),
    (err: unknown) => fail(err),
  );
}

function fail(err: unknown): void {
  const line = errorMessage(err).replace(/\s*\n\s*/g, ' ');
  process.stderr.write(`devicemesh: ${line}\n`);
  const usageError = err instanceof ValidationError || (err instanceof DeviceMeshError && err.code === 'INVALID_ARGUMENT');
  process.exit(usageError ? 2 : 1);
}
