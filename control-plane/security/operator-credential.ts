import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { errorMessage, UnavailableError } from '../../src/errors';
import { randomText, secretMatches, sha256Hex } from './bootstrap-tokens';
import { writeAtomic } from './certificate-authority';
import { clientCredentialFiles } from '../../src/security/client-credential-files';

/**
 * The operator's bearer credential. On first start the token is written to
 * `<dataDir>/operator.token` (0600) for the CLI, and only its hash is kept by the control plane
 * (`operator.sha256`): deleting or replacing the token file does not change what is accepted.
 */
export class OperatorCredential {
  private constructor(
    private readonly sha256: string,
    readonly tokenFile: string,
  ) {}

  static open(dataDir: string): { credential: OperatorCredential; created: string | undefined } {
    const tokenFile = clientCredentialFiles(dataDir).operatorTokenFile;
    const hashFile = path.join(dataDir, 'operator.sha256');
    try {
      if (fs.existsSync(hashFile)) {
        return { credential: new OperatorCredential(fs.readFileSync(hashFile, 'utf8').trim(), tokenFile), created: undefined };
      }
      const token = `dmop-${randomText(40, randomBytes)}`;
      fs.mkdirSync(dataDir, { recursive: true });
      writeAtomic(tokenFile, token + '\n', 0o600);
      writeAtomic(hashFile, sha256Hex(token) + '\n', 0o600);
      return { credential: new OperatorCredential(sha256Hex(token), tokenFile), created: token };
    } catch (err) {
      throw new UnavailableError(`cannot set up the operator credential in ${dataDir}: ${errorMessage(err)}`, { cause: err });
    }
  }

  matches(token: string): boolean {
    return secretMatches(token, this.sha256);
  }
}
