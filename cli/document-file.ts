import * as fs from 'node:fs';
import { errorMessage, ResourceExhaustedError, ValidationError } from '../src/errors';

/**
 * The largest document file `apply` reads (4 MiB, the control plane's gRPC message limit): the
 * file is refused before it is read, so a huge one costs no memory and gets an error saying why.
 */
export const MAX_DOCUMENT_BYTES = 4 * 1024 * 1024;

/** Reads a document file (or stdin for "-") of at most `maxBytes`; a larger one is a ResourceExhaustedError naming both sizes. */
export function readDocumentFile(file: string, maxBytes: number = MAX_DOCUMENT_BYTES): string {
  const name = file === '-' ? 'stdin' : file;
  let fd: number | undefined;
  try {
    fd = file === '-' ? 0 : fs.openSync(file, 'r');
    const size = fs.fstatSync(fd).isFile() ? fs.fstatSync(fd).size : 0;
    if (size > maxBytes) throw tooLarge(name, `${size} bytes, more`, maxBytes);
    // Pipes and stdin have no size: read at most one byte past the limit to know.
    const buffer = Buffer.allocUnsafe(maxBytes + 1);
    let length = 0;
    for (;;) {
      const n = readSome(fd, buffer, length);
      if (n === 0) break;
      length += n;
      if (length > maxBytes) throw tooLarge(name, 'more', maxBytes);
    }
    return buffer.toString('utf8', 0, length);
  } catch (err) {
    if (err instanceof ResourceExhaustedError) throw err;
    throw new ValidationError('', `cannot read ${name}: ${errorMessage(err)}`);
  } finally {
    if (fd !== undefined && fd !== 0) fs.closeSync(fd);
  }
}

function readSome(fd: number, buffer: Buffer, offset: number): number {
  return fs.readSync(fd, buffer, offset, buffer.length - offset, null);
}

function tooLarge(name: string, size: string, maxBytes: number): ResourceExhaustedError {
  return new ResourceExhaustedError(`${name} holds ${size} than the ${maxBytes} bytes a document file may hold (split it into several files)`);
}
