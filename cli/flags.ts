import * as fs from 'node:fs';
import { errorMessage, ValidationError } from '../src/errors';
import { parseAddressList, parseHostPort } from '../src/util/address';
import { CONFIG_FLAG, type ConfigValues, parseConfigFile } from './config-file';

/** `addresses`: one host:port or several separated by commas (replicas of one service); `count`: a whole number ≥ 0. */
export type FlagKind = 'string' | 'list' | 'address' | 'addresses' | 'duration' | 'count' | 'boolean';

export interface FlagSpec {
  name: string;
  /** One-letter alias, e.g. `f` for `-f`. */
  short?: string;
  kind: FlagKind;
  default?: string;
  required?: boolean;
  /** A secret: given on the command line (where `ps` shows it to every local user), it is used with a printed warning. */
  secret?: { safer: string };
  help: string;
}

export interface ParsedFlags {
  values: Record<string, string>;
  lists: Record<string, string[]>;
  positionals: string[];
}

/** `--host-id` → `DEVICEMESH_HOST_ID`. */
export function envName(flag: string): string {
  return `DEVICEMESH_${flag.toUpperCase().replace(/-/g, '_')}`;
}

/** Reads a config file's text; tests pass their own. */
export type ReadConfig = (path: string) => string;

/**
 * Parses `--name value`, `--name=value` and `-x value`; every flag falls back to its
 * DEVICEMESH_* environment variable (lists: comma-separated), then to the file named by
 * `--config` where the command has that flag, then to its default.
 */
export function parseFlags(
  command: string,
  args: readonly string[],
  specs: readonly FlagSpec[],
  env: NodeJS.ProcessEnv = process.env,
  readConfig: ReadConfig = readConfigText,
): ParsedFlags {
  const byName = new Map(specs.map((s) => [s.name, s]));
  const byShort = new Map(specs.filter((s) => s.short).map((s) => [s.short as string, s]));
  const values: Record<string, string> = {};
  const lists: Record<string, string[]> = {};
  const positionals: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] as string;
    if (arg === '--') {
      positionals.push(...args.slice(i + 1));
      break;
    }
    if (!arg.startsWith('-') || arg === '-') {
      positionals.push(arg);
      continue;
    }
    let name: string;
    let value: string | undefined;
    let spec: FlagSpec | undefined;
    if (arg.startsWith('--')) {
      const eq = arg.indexOf('=');
      name = eq >= 0 ? arg.slice(2, eq) : arg.slice(2);
      value = eq >= 0 ? arg.slice(eq + 1) : undefined;
      spec = byName.get(name);
    } else {
      name = arg.slice(1);
      spec = byShort.get(name);
    }
    if (!spec) throw new ValidationError('', `unknown flag ${arg} for "devicemesh ${command}"`);
    if (spec.secret) {
      process.stderr.write(
        `devicemesh ${command}: warning: --${spec.name} puts a secret on the command line, where any local user can read it (ps, /proc/<pid>/cmdline); use ${spec.secret.safer} or ${envName(spec.name)}\n`,
      );
    }
    if (spec.kind === 'boolean') {
      values[spec.name] = booleanValue(spec.name, value ?? 'true');
      continue;
    }
    if (value === undefined) {
      value = args[i + 1];
      if (value === undefined || (value.startsWith('-') && value !== '-')) {
        throw new ValidationError('', `flag --${spec.name} needs a value`);
      }
      i++;
    }
    if (spec.kind === 'list') (lists[spec.name] ??= []).push(value);
    else values[spec.name] = value;
  }
  const file = configValues(command, specs, values, env, readConfig);
  for (const spec of specs) {
    const fromEnv = env[envName(spec.name)];
    if (spec.kind === 'list') {
      if (!lists[spec.name] && fromEnv) lists[spec.name] = fromEnv.split(',').filter((x) => x !== '');
      if (!lists[spec.name] && file.lists[spec.name]) lists[spec.name] = file.lists[spec.name] as string[];
      lists[spec.name] ??= [];
      continue;
    }
    if (values[spec.name] === undefined && fromEnv !== undefined && fromEnv !== '') {
      values[spec.name] = spec.kind === 'boolean' ? booleanValue(envName(spec.name), fromEnv) : fromEnv;
    }
    if (values[spec.name] === undefined && file.values[spec.name] !== undefined) values[spec.name] = file.values[spec.name] as string;
    if (values[spec.name] === undefined && spec.default !== undefined) values[spec.name] = spec.default;
    if (values[spec.name] === undefined && spec.required) {
      throw new ValidationError('', `flag --${spec.name} is required (or set ${envName(spec.name)})`);
    }
    if (spec.kind === 'duration' && values[spec.name] !== undefined) durationMs(spec.name, values[spec.name] as string);
    if (spec.kind === 'count' && values[spec.name] !== undefined) countValue(spec.name, values[spec.name] as string);
    if ((spec.kind === 'address' || spec.kind === 'addresses') && values[spec.name] !== undefined) {
      const value = values[spec.name] as string;
      try {
        if (spec.kind === 'addresses') parseAddressList(value);
        else parseHostPort(value);
      } catch (err) {
        throw new ValidationError('', `flag --${spec.name}: ${(err as Error).message}`);
      }
    }
  }
  return { values, lists, positionals };
}

/** The settings of the file named by --config (or its environment variable), if the command takes one. */
function configValues(
  command: string,
  specs: readonly FlagSpec[],
  values: Readonly<Record<string, string>>,
  env: NodeJS.ProcessEnv,
  readConfig: ReadConfig,
): ConfigValues {
  if (!specs.some((s) => s.name === CONFIG_FLAG.name)) return { values: {}, lists: {} };
  const path = values[CONFIG_FLAG.name] ?? env[envName(CONFIG_FLAG.name)];
  if (path === undefined || path === '') return { values: {}, lists: {} };
  return parseConfigFile(readConfig(path), path, command, specs);
}

function readConfigText(path: string): string {
  try {
    return fs.readFileSync(path, 'utf8');
  } catch (err) {
    throw new ValidationError('', `cannot read config file ${path}: ${errorMessage(err)}`);
  }
}

function booleanValue(name: string, text: string): string {
  if (/^(1|true|yes)$/i.test(text)) return 'true';
  if (/^(0|false|no)$/i.test(text)) return 'false';
  throw new ValidationError('', `${name}: "${text}" is neither true nor false`);
}

/** A `duration` flag's value in milliseconds: "10s", "500ms", "2m". */
export function durationMs(flag: string, text: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/.exec(text);
  if (!m) throw new ValidationError('', `flag --${flag}: "${text}" is not a duration like 500ms, 10s, 2m or 24h`);
  const n = Number(m[1]);
  return Math.round(n * { ms: 1, s: 1000, m: 60_000, h: 3600_000 }[m[2] as 'ms' | 's' | 'm' | 'h']);
}

/** A `count` flag's value: a whole number from 0 to a billion, digits only. */
export function countValue(flag: string, text: string): number {
  if (!/^\d{1,10}$/.test(text) || Number(text) > 1e9) throw new ValidationError('', `flag --${flag}: "${text}" is not a whole number from 0 to 1000000000`);
  return Number(text);
}

export function usage(command: string, synopsis: string, specs: readonly FlagSpec[]): string {
  const lines = [`usage: devicemesh ${command} ${synopsis}`.trimEnd(), ''];
  for (const s of specs) {
    const flag = `${s.short ? `-${s.short}, ` : ''}--${s.name}`;
    const def = s.default !== undefined ? ` (default ${s.default})` : '';
    lines.push(`  ${flag.padEnd(24)} ${s.help}${def}  [${envName(s.name)}]`);
  }
  return lines.join('\n');
}
