import { execFile } from 'node:child_process';
import { NotFoundError, ProtocolError } from '../errors';

/** One line of `getent passwd|group NAME`: name:password:id:… → the id. */
export function parseGetentId(line: string, name: string): number {
  const fields = line.trim().split(':');
  if (fields.length < 3 || fields[0] !== name || !/^\d{1,10}$/.test(fields[2] ?? '')) {
    throw new ProtocolError(`getent gave ${JSON.stringify(line.slice(0, 80))} for ${name}, not name:x:id:…`);
  }
  return Number(fields[2]);
}

/**
 * A user or group of the binding (a numeric id, or a name the system's NSS knows, so LDAP and
 * sssd accounts work too); undefined when the binding leaves it to the sidecar's own.
 */
export function accountId(database: 'passwd' | 'group', value: string | undefined): Promise<number | undefined> {
  if (!value) return Promise.resolve(undefined);
  if (/^\d+$/.test(value)) return Promise.resolve(Number(value));
  return new Promise((resolve, reject) => {
    execFile('getent', [database, value], { timeout: 5000 }, (err, stdout) => {
      if (err) {
        reject(new NotFoundError(`no ${database === 'passwd' ? 'user' : 'group'} named ${value} on this host`));
        return;
      }
      try {
        resolve(parseGetentId(stdout.split('\n')[0] ?? '', value));
      } catch (parseErr) {
        reject(parseErr);
      }
    });
  });
}
