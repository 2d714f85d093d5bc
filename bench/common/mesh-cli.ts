import { execFile } from 'node:child_process';
import * as path from 'node:path';
import { BIN, waitFor } from '../data-path/children';

/** One short CLI command, asynchronously (so Ctrl-C still stops a benchmark). */
export type MeshCli = (args: string[]) => Promise<string>;

/** The CLI against the secure control plane whose data directory is `dataDir`: its CA bundle and operator credential. */
export function meshCli(dataDir: string): MeshCli {
  const env = {
    ...process.env,
    DEVICEMESH_CA_FILE: path.join(dataDir, 'ca', 'bundle.crt'),
    DEVICEMESH_OPERATOR_TOKEN_FILE: path.join(dataDir, 'operator.token'),
  };
  return (args) =>
    new Promise((resolve, reject) => {
      execFile(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 20_000, env }, (err, stdout, stderr) => {
        if (err) reject(new Error(`devicemesh ${args[0]} failed: ${(stderr || stdout || err.message).trim()}`));
        else resolve(stdout);
      });
    });
}

/** A join token made with `devicemesh token create`, once the control plane answers. */
export function joinToken(cli: MeshCli, cp: string, kind: 'host' | 'workload', id: string, hopeless: () => Error | undefined): Promise<string> {
  return waitFor(`a join token for ${kind} ${id}`, async () => (await cli(['token', 'create', `--${kind}`, id, '--control-plane', cp])).trim(), 30_000, hopeless);
}
