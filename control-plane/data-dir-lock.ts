import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { errorMessage, UnavailableError } from '../src/errors';

export const LOCK_FILE = 'control-plane.lock';

/** Who holds a data directory: written into its lock file. */
export interface LockHolder {
  pid: number;
  host: string;
  startedAt: string;
}

export interface DataDirLock {
  readonly file: string;
  release(): void;
}

/**
 * Takes the data directory for this process: two control planes writing one snapshot and log
 * would corrupt each other's state. The lock file is linked into place exclusively and names its holder;
 * a lock left by a process that is gone (killed, crashed) is taken over, one held by a live
 * process is refused with an error naming it.
 */
export function lockDataDir(dataDir: string): DataDirLock {
  const file = path.join(dataDir, LOCK_FILE);
  const me: LockHolder = { pid: process.pid, host: os.hostname(), startedAt: new Date().toISOString() };
  // Written whole beside it, then linked into place: link() is atomic and fails if the lock exists,
  // so a lock file is never seen half-written.
  const draft = `${file}.${process.pid}.${Date.now()}`;
  try {
    fs.mkdirSync(dataDir, { recursive: true });
    fs.writeFileSync(draft, JSON.stringify(me) + '\n', { mode: 0o644 });
  } catch (err) {
    throw new UnavailableError(`cannot lock the data directory ${dataDir}: ${errorMessage(err)}`, { cause: err });
  }
  try {
    for (let attempt = 0; attempt < 3; attempt++) {
      if (link(draft, file, dataDir)) return { file, release: () => releaseIfMine(file) };
      const seen = inode(file);
      const holder = readHolder(file);
      if (holder && isAlive(holder)) {
        throw new UnavailableError(
          `the data directory ${dataDir} is in use by another control plane (pid ${holder.pid} on ${holder.host}, since ${holder.startedAt}); stop it or give another --data-dir`,
        );
      }
      // The holder is gone: its lock is stale. Only that same file is removed, not one another taker linked meanwhile.
      if (seen !== undefined && inode(file) === seen) fs.rmSync(file, { force: true });
    }
  } finally {
    fs.rmSync(draft, { force: true });
  }
  throw new UnavailableError(`cannot lock the data directory ${dataDir}: ${file} keeps reappearing`);
}

/** True when the lock was taken, false when one exists. */
function link(draft: string, file: string, dataDir: string): boolean {
  try {
    fs.linkSync(draft, file);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw new UnavailableError(`cannot lock the data directory ${dataDir}: ${errorMessage(err)}`, { cause: err });
  }
}


function inode(file: string): number | undefined {
  try {
    return fs.statSync(file).ino;
  } catch {
    return undefined;
  }
}

function readHolder(file: string): LockHolder | undefined {
  try {
    const value = JSON.parse(fs.readFileSync(file, 'utf8')) as Partial<LockHolder>;
    if (typeof value.pid !== 'number' || typeof value.host !== 'string') return undefined;
    return { pid: value.pid, host: value.host, startedAt: String(value.startedAt ?? '?') };
  } catch {
    // Not a lock this code wrote: no live holder can be named.
    return undefined;
  }
}

/** Whether the holder still runs. A holder on another host (a shared volume) cannot be checked, so it counts as alive. */
function isAlive(holder: LockHolder): boolean {
  if (holder.host !== os.hostname()) return true;
  try {
    process.kill(holder.pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function releaseIfMine(file: string): void {
  const holder = readHolder(file);
  if (holder?.pid === process.pid && holder.host === os.hostname()) fs.rmSync(file, { force: true });
}
