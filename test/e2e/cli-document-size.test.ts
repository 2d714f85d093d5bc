import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { MAX_DOCUMENT_BYTES } from '../../cli/document-file';
import { cli } from '../helpers/processes';

/** Issue 15, low item: `apply` refuses an oversized document file before reading it, with an error that says so. */
describe('e2e: the CLI\'s document size cap', function () {
  this.timeout(60_000);
  let tmp: string;

  before(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'dm-docsize-'));
  });
  after(() => fs.rmSync(tmp, { recursive: true, force: true }));

  const refused = (r: { code: number | null; stderr: string }, what: RegExp): void => {
    assert.equal(r.code, 1, r.stderr);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.match(r.stderr, what);
    assert.doesNotMatch(r.stderr, /name resolution|unreachable/);
  };

  it('refuses a 50 MB file by its size, naming the file and the limit', () => {
    const file = path.join(tmp, 'huge.yaml');
    fs.writeFileSync(file, '');
    fs.truncateSync(file, 50 * 1024 * 1024);
    // No control plane listens there: the refusal must come before any call.
    const r = cli(['apply', '-f', file, '--control-plane', '127.0.0.1:1', '--insecure']);
    refused(r, new RegExp(`huge\\.yaml holds ${50 * 1024 * 1024} bytes, more than the ${MAX_DOCUMENT_BYTES} bytes a document file may hold`));
  });

  it('refuses an oversized document on stdin, which has no size, after reading one byte past the limit', () => {
    const r = cli(['apply', '-f', '-', '--control-plane', '127.0.0.1:1', '--insecure'], {}, 'x'.repeat(MAX_DOCUMENT_BYTES + 10));
    refused(r, /stdin holds more than the \d+ bytes a document file may hold/);
  });

  it('reads a file at the limit and judges its content', () => {
    const file = path.join(tmp, 'at-limit.yaml');
    fs.writeFileSync(file, `# ${'x'.repeat(MAX_DOCUMENT_BYTES - 3)}\n`);
    assert.equal(fs.statSync(file).size, MAX_DOCUMENT_BYTES);
    const r = cli(['apply', '-f', file, '--control-plane', '127.0.0.1:1', '--insecure']);
    // A comment alone holds no documents: refused for that, not for its size.
    assert.notEqual(r.code, 0);
    assert.doesNotMatch(r.stderr, /bytes a document file may hold/);
    assert.match(r.stderr, /document/);
  });
});
