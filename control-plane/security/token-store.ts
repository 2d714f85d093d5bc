import * as fs from 'node:fs';
import * as path from 'node:path';
import { errorMessage, UnavailableError } from '../../src/errors';
import type { TokenRecord } from './bootstrap-tokens';
import { writeAtomic } from './certificate-authority';

/** `<dataDir>/tokens.json` (0600): the token records, hashes only, rewritten whole on each change. */
export class TokenStore {
  readonly file: string;

  constructor(dataDir: string) {
    this.file = path.join(dataDir, 'tokens.json');
  }

  load(): TokenRecord[] {
    let text: string;
    try {
      text = fs.readFileSync(this.file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw new UnavailableError(`cannot read ${this.file}: ${errorMessage(err)}`, { cause: err });
    }
    try {
      const parsed = JSON.parse(text) as { tokens?: TokenRecord[] };
      return Array.isArray(parsed.tokens) ? parsed.tokens : [];
    } catch (err) {
      throw new UnavailableError(`${this.file} is corrupt: ${errorMessage(err)}`, { cause: err });
    }
  }

  save(records: readonly TokenRecord[]): void {
    try {
      fs.mkdirSync(path.dirname(this.file), { recursive: true });
      writeAtomic(this.file, JSON.stringify({ tokens: records }, null, 2) + '\n', 0o600);
    } catch (err) {
      throw new UnavailableError(`cannot write ${this.file}: ${errorMessage(err)}`, { cause: err });
    }
  }
}
