import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { AlreadyExistsError, PermissionDeniedError } from '../../src/errors';

/** Who a one-hop socket belongs to: the workload's uid (its identity on the gateway) and optionally a group. */
export interface SocketOwner {
  uid: number;
  gid: number | undefined;
}

/** What of a file the checks look at (an fs.Stats has it). */
export interface FileFacts {
  uid: number;
  mode: number;
  isDirectory(): boolean;
  isSymbolicLink(): boolean;
  isSocket(): boolean;
}

/** The directory's mode: only the owner, and the group to pass through when the binding names one. */
export function directoryMode(owner: SocketOwner): number {
  return owner.gid === undefined ? 0o700 : 0o710;
}

/** The socket's mode: the binding's, else 0600 (0660 with a group). */
export function socketMode(mode: number | undefined, owner: SocketOwner): number {
  if (mode) return mode;
  return owner.gid === undefined ? 0o600 : 0o660;
}

/**
 * Why an existing directory cannot hold the owner's socket, or undefined when it can: it must be a
 * real directory (no symlink to follow elsewhere), owned by the owner, writable by nobody else, so
 * that only the owner (and root) can reach what is inside.
 */
export function directoryProblem(dir: string, facts: FileFacts, owner: SocketOwner): string | undefined {
  if (facts.isSymbolicLink() || !facts.isDirectory()) return `${dir} is not a directory`;
  if (facts.uid !== owner.uid) return `${dir} belongs to uid ${facts.uid}, not to the binding's owner ${owner.uid}`;
  if ((facts.mode & 0o022) !== 0) return `${dir} is writable by others (mode ${(facts.mode & 0o777).toString(8)})`;
  return undefined;
}

/** Why an existing file at the socket's path cannot be replaced, or undefined when it is a stale socket. */
export function socketPathProblem(file: string, facts: FileFacts): string | undefined {
  return facts.isSocket() ? undefined : `${file} exists and is not a socket`;
}

async function lstatOrNone(file: string): Promise<FileFacts | undefined> {
  try {
    return await fs.lstat(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/**
 * Makes the socket's directory the owner's (created when missing, checked when not) and clears a
 * stale socket left at the path; rejects with PERMISSION_DENIED naming what is wrong.
 */
export async function prepareSocketPath(socketPath: string, owner: SocketOwner): Promise<void> {
  const dir = path.dirname(socketPath);
  const existing = await lstatOrNone(dir);
  if (existing) {
    const problem = directoryProblem(dir, existing, owner);
    if (problem) throw new PermissionDeniedError(`one-hop socket ${socketPath}: ${problem}`);
  } else {
    await fs.mkdir(path.dirname(dir), { recursive: true, mode: 0o755 });
    await fs.mkdir(dir, { mode: directoryMode(owner) });
    // mkdir's mode passes the umask; the owner gets exactly the mode meant.
    await fs.chown(dir, owner.uid, owner.gid ?? -1);
    await fs.chmod(dir, directoryMode(owner));
  }
  const file = await lstatOrNone(socketPath);
  if (!file) return;
  const problem = socketPathProblem(socketPath, file);
  if (problem) throw new AlreadyExistsError(`one-hop socket ${problem}`);
  await fs.unlink(socketPath);
}

/** Gives a bound socket to its owner with its mode. */
export async function ownSocket(socketPath: string, owner: SocketOwner, mode: number | undefined): Promise<void> {
  await fs.chown(socketPath, owner.uid, owner.gid ?? -1);
  await fs.chmod(socketPath, socketMode(mode, owner));
}
