import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { builtinModules } from 'node:module';
import { REPO_ROOT } from '../helpers/processes';

/** The folders of the shipped processes and what they share; their imports are runtime dependencies. */
const SHIPPED = ['agent', 'cli', 'control-plane', 'sidecar', 'src', 'bin'];

function sourceFiles(dir: string): string[] {
  const out: string[] = [];
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) out.push(...sourceFiles(full));
    else if (/\.(ts|js)$/.test(entry.name) && !entry.name.endsWith('.d.ts')) out.push(full);
  }
  return out;
}

/** `@scope/name/sub` → `@scope/name`; `name/sub` → `name`. */
function packageOf(specifier: string): string {
  const parts = specifier.split('/');
  return specifier.startsWith('@') ? parts.slice(0, 2).join('/') : (parts[0] as string);
}

/** Every bare package a file imports or requires, type-only imports included (tsc needs them installed too). */
function importedPackages(text: string): string[] {
  const found: string[] = [];
  const re = /(?:\bfrom\s+|\bimport\s*\(\s*|\brequire\s*\(\s*|^\s*import\s+)['"]([^'"]+)['"]/gm;
  for (let m = re.exec(text); m !== null; m = re.exec(text)) {
    const spec = m[1] as string;
    if (spec.startsWith('.') || spec.startsWith('node:') || builtinModules.includes(spec.split('/')[0] as string)) continue;
    found.push(packageOf(spec));
  }
  return found;
}

describe('package.json', () => {
  it('declares every package the shipped code imports as a dependency (not left to a transitive one)', () => {
    const manifest = JSON.parse(fs.readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')) as { dependencies: Record<string, string> };
    const missing = new Map<string, string>();
    for (const folder of SHIPPED) {
      const dir = path.join(REPO_ROOT, folder);
      if (!fs.existsSync(dir)) continue;
      for (const file of sourceFiles(dir)) {
        for (const pkg of importedPackages(fs.readFileSync(file, 'utf8'))) {
          if (!Object.hasOwn(manifest.dependencies, pkg)) missing.set(pkg, path.relative(REPO_ROOT, file));
        }
      }
    }
    assert.deepEqual([...missing].map(([pkg, file]) => `${pkg} (imported by ${file})`), []);
  });

  it('finds the imports this check relies on', () => {
    assert.deepEqual(
      importedPackages(`import { autoDetect } from '@serialport/bindings-cpp';\nimport type { X } from "@serialport/bindings-interface/dist";\nconst y = require('yaml');\nimport 'reflect-metadata';\nimport * as fs from 'node:fs';\nimport { a } from './local';`),
      ['@serialport/bindings-cpp', '@serialport/bindings-interface', 'yaml', 'reflect-metadata'],
    );
  });
});
