import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { BIN, type Child, waitFor } from '../data-path/children';
import { clientCredentialEnv } from '../../src/security/client-credential-files';

/** One short CLI command, asynchronously (so Ctrl-C still stops a benchmark). */
export type MeshCli = (args: string[]) => Promise<string>;

/** The CLI against the secure control plane whose data directory is `dataDir`: its CA bundle and operator credential. */
export function meshCli(dataDir: string): MeshCli {
  return cliWith({ ...process.env, ...clientCredentialEnv(dataDir) });
}

function cliWith(env: NodeJS.ProcessEnv, extra: readonly string[] = []): MeshCli {
  return (args) =>
    new Promise((resolve, reject) => {
      execFile(process.execPath, [BIN, ...args, ...extra], { encoding: 'utf8', timeout: 20_000, env }, (err, stdout, stderr) => {
        if (err) reject(new Error(`devicemesh ${args[0]} failed: ${(stderr || stdout || err.message).trim()}`));
        else resolve(stdout);
      });
    });
}

/** A join token made with `devicemesh token create`, once the control plane answers. */
export function joinToken(cli: MeshCli, cp: string, kind: 'host' | 'workload', id: string, hopeless: () => Error | undefined): Promise<string> {
  return waitFor(`a join token for ${kind} ${id}`, async () => (await cli(['token', 'create', `--${kind}`, id, '--control-plane', cp])).trim(), 30_000, hopeless);
}

/** A control plane started as a child, its CLI, and the files (0600) holding the join tokens of the one agent and one sidecar a benchmark runs. */
export interface BenchControlPlane {
  controlPlane: Child;
  cli: MeshCli;
  hostTokenFile: string;
  workloadTokenFile: string;
}

/** Writes a token where only this user reads it: given as --token-file, never on a command line. */
function tokenFile(dir: string, name: string, token: string): string {
  const file = path.join(dir, `${name}.token`);
  fs.writeFileSync(file, token, { mode: 0o600 });
  return file;
}

/**
 * Starts `devicemesh control-plane` through `start` with its data in `dataDir`, as an operator runs
 * it, and mints the tokens with the CLI; stops it again if the tokens cannot be had.
 */
export async function startSecureControlPlane(
  start: (name: string, args: string[]) => Child,
  listen: { grpc: string; admin: string },
  dataDir: string,
  member: { hostId: string; workloadId: string },
): Promise<BenchControlPlane> {
  const cli = meshCli(dataDir);
  const controlPlane = start('control-plane', ['control-plane', '--listen', listen.grpc, '--admin', listen.admin, '--data-dir', dataDir]);
  try {
    const hopeless = (): Error | undefined => controlPlane.exitError();
    const dir = path.dirname(dataDir);
    const hostTokenFile = tokenFile(dir, `host-${member.hostId}`, await joinToken(cli, listen.grpc, 'host', member.hostId, hopeless));
    const workloadTokenFile = tokenFile(dir, `workload-${member.workloadId}`, await joinToken(cli, listen.grpc, 'workload', member.workloadId, hopeless));
    return { controlPlane, cli, hostTokenFile, workloadTokenFile };
  } catch (err) {
    await controlPlane.stop();
    throw err;
  }
}

/** The same control plane with --insecure: plaintext, no tokens (the file names are empty), for comparison only. */
export function startPlaintextControlPlane(
  start: (name: string, args: string[]) => Child,
  listen: { grpc: string; admin: string },
  dataDir: string,
): BenchControlPlane {
  const controlPlane = start('control-plane', ['control-plane', '--listen', listen.grpc, '--admin', listen.admin, '--data-dir', dataDir, '--insecure']);
  return { controlPlane, cli: cliWith(process.env, ['--insecure']), hostTokenFile: '', workloadTokenFile: '' };
}
