import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

/**
 * A PATH like `base` on which `command` cannot be found, as on a machine without it: every
 * directory that has it is replaced by a temp dir of links to everything else in it. Returns the
 * PATH and a function that removes the temp dirs.
 */
export function pathWithout(command: string, base = process.env.PATH ?? ''): { PATH: string; remove: () => void } {
  const made: string[] = [];
  const dirs = base.split(path.delimiter).filter((d) => d !== '');
  const replaced = dirs.map((dir) => {
    if (!fs.existsSync(path.join(dir, command))) return dir;
    const copy = fs.mkdtempSync(path.join(os.tmpdir(), `dm-path-without-${command}-`));
    made.push(copy);
    for (const name of fs.readdirSync(dir)) if (name !== command) fs.symlinkSync(path.join(dir, name), path.join(copy, name));
    return copy;
  });
  return { PATH: replaced.join(path.delimiter), remove: () => made.forEach((d) => fs.rmSync(d, { recursive: true, force: true })) };
}
