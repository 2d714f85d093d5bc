import * as fs from 'node:fs';
import * as path from 'node:path';
import { errorMessage, UnavailableError } from '../../src/errors';
import { writeAtomic } from './certificate-authority';

/**
 * `<dataDir>/<name>` (0600): a list of records under one key (`{"tokens": [...]}`), rewritten
 * whole and atomically on each change. Holds hashes and serials, never secrets.
 */
export class RecordFile<T> {
  readonly file: string;

  constructor(
    dataDir: string,
    name: string,
    private readonly key: string,
  ) {
    this.file = path.join(dataDir, name);
  }

  load(): T[] {
    let text: string;
    try {
      text = fs.readFileSync(this.file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw new UnavailableError(`cannot read ${this.file}: ${errorMessage(err)}`, { cause: err });
    }
    try {
      const list = (JSON.parse(text) as Record<string, unknown>)[this.key];
      return Array.isArray(list) ? (list as T[]) : [];
    } catch (err) {
      throw new UnavailableError(`${this.file} is corrupt: ${errorMessage(err)}`, { cause: err });
    }
  }

  save(records: readonly T[]): void {
    try {
      fs.mkdirSync(path.dirname(this.file), { recursive: true });
      writeAtomic(this.file, JSON.stringify({ [this.key]: records }, null, 2) + '\n', 0o600);
    } catch (err) {
      throw new UnavailableError(`cannot write ${this.file}: ${errorMessage(err)}`, { cause: err });
    }
  }
}
