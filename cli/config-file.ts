import { ValidationError } from '../src/errors';
import type { FlagSpec } from './flags';

/** Flag settings read from a config file, before flags and environment variables are layered over them. */
export interface ConfigValues {
  values: Record<string, string>;
  lists: Record<string, string[]>;
}

/** The flag that names the file; the file itself cannot set it (one file, no includes). */
export const CONFIG_FLAG: FlagSpec = {
  name: 'config',
  kind: 'string',
  help: 'YAML file with the same keys as these flags (flags and environment variables win over it)',
};

/**
 * Parses a config file: one YAML mapping whose keys are the command's flag names
 * (`host-id: gw1`, `watch: [/dev/ttyUSB*]`). Scalars are read as the text a flag would get, a
 * list flag takes a list or one scalar. Anything else is a ValidationError naming the file.
 */
export function parseConfigFile(text: string, source: string, command: string, specs: readonly FlagSpec[]): ConfigValues {
  const where = `config file ${source}`;
  // Required here, not at the top: only a command given --config reads YAML.
  const { parseDocument } = require('yaml') as typeof import('yaml');
  const doc = parseDocument(text, { uniqueKeys: true });
  const err = doc.errors[0];
  if (err) {
    const line = err.linePos?.[0];
    throw new ValidationError(where, `invalid YAML${line ? ` at line ${line.line}, column ${line.col}` : ''}: ${err.message.split('\n')[0]}`);
  }
  let parsed: unknown;
  try {
    parsed = doc.toJS({ maxAliasCount: 100 });
  } catch (e) {
    throw new ValidationError(where, `invalid YAML: ${(e as Error).message.split('\n')[0]}`);
  }
  const out: ConfigValues = { values: {}, lists: {} };
  if (parsed === null || parsed === undefined) return out;
  if (typeof parsed !== 'object' || Array.isArray(parsed)) throw new ValidationError(where, 'must be a mapping of flag names to values');
  const byName = new Map(specs.filter((s) => s.name !== CONFIG_FLAG.name).map((s) => [s.name, s]));
  for (const [key, value] of Object.entries(parsed as Record<string, unknown>)) {
    const spec = byName.get(key);
    if (!spec) throw new ValidationError(where, `unknown key "${key}" for "devicemesh ${command}" (keys are the flag names without --)`);
    if (spec.kind === 'list') {
      const items = Array.isArray(value) ? value : [value];
      out.lists[key] = items.map((item, i) => scalar(where, `${key}[${i}]`, item));
    } else {
      out.values[key] = scalar(where, key, value);
    }
  }
  return out;
}

function scalar(where: string, key: string, value: unknown): string {
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  const what = value === null ? 'no value' : Array.isArray(value) ? 'a list' : 'a mapping';
  throw new ValidationError(where, `key "${key}" has ${what}; it takes a single value as its flag does`);
}
