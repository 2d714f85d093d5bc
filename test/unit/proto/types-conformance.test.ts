import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as protobuf from 'protobufjs';
import * as ts from 'typescript';
import { DEVICEMESH_PROTO_ROOT, includeDirs, protobufjsProtoRoot, resolveProtoFile } from '../../../src/proto/paths';
import { REPO_ROOT } from '../../helpers/processes';

/**
 * src/proto/types.ts mirrors the .proto files by hand, in the shape proto-loader decodes them to
 * (OBJECT_OPTIONS: camelCase, enums as names, 64-bit integers as strings, defaults present). This
 * reads both — the TypeScript with the compiler's parser, every proto/**\/*.proto with protobufjs —
 * and fails on any drift: a field or enum value added, removed, renamed or retyped on either side.
 */

const TYPES_FILE = path.join(REPO_ROOT, 'src', 'proto', 'types.ts');

/** The interfaces that mirror a message of another package, and only the fields devicemesh uses (a subset). */
const FOREIGN: Readonly<Record<string, { message: string; subset: boolean }>> = {
  Timestamp: { message: 'google.protobuf.Timestamp', subset: false },
  XdsAny: { message: 'google.protobuf.Any', subset: false },
  XdsStatus: { message: 'google.rpc.Status', subset: false },
  XdsNode: { message: 'envoy.config.core.v3.Node', subset: true },
  DiscoveryRequest: { message: 'envoy.service.discovery.v3.DiscoveryRequest', subset: true },
  DiscoveryResponse: { message: 'envoy.service.discovery.v3.DiscoveryResponse', subset: true },
};

interface TsField {
  name: string;
  type: string;
}

interface TsDeclarations {
  interfaces: Map<string, TsField[]>;
  /** Type aliases that are unions of string literals: the enums. */
  unions: Map<string, string[]>;
}

function protoFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const full = path.join(dir, e.name);
    if (e.isDirectory()) return protoFiles(full);
    return e.name.endsWith('.proto') ? [path.relative(DEVICEMESH_PROTO_ROOT, full)] : [];
  });
}

/** Every devicemesh .proto (served or not), with the Envoy and Google files they import. */
function loadProtos(): protobuf.Root {
  const root = new protobuf.Root();
  const dirs = [...includeDirs(), protobufjsProtoRoot()];
  root.resolvePath = (_origin: string, target: string): string => resolveProtoFile(target, dirs) ?? target;
  root.loadSync([...protoFiles(DEVICEMESH_PROTO_ROOT), 'envoy/service/discovery/v3/ads.proto', 'google/rpc/status.proto'], { keepCase: false });
  root.resolveAll();
  return root;
}

/** A union of string literals, e.g. `'A' | 'B'`: its members; otherwise undefined. */
function literalUnion(node: ts.TypeNode): string[] | undefined {
  if (!ts.isUnionTypeNode(node)) return undefined;
  const members: string[] = [];
  for (const t of node.types) {
    if (!ts.isLiteralTypeNode(t) || !ts.isStringLiteral(t.literal)) return undefined;
    members.push(t.literal.text);
  }
  return members;
}

function parseTypes(file: string): TsDeclarations {
  const source = ts.createSourceFile(file, fs.readFileSync(file, 'utf8'), ts.ScriptTarget.ES2022, true);
  const interfaces = new Map<string, TsField[]>();
  const unions = new Map<string, string[]>();
  for (const statement of source.statements) {
    if (ts.isInterfaceDeclaration(statement)) {
      const fields = statement.members.filter(ts.isPropertySignature).map((m) => ({ name: m.name.getText(source), type: m.type ? normalise(m.type.getText(source)) : '' }));
      interfaces.set(statement.name.text, fields);
    } else if (ts.isTypeAliasDeclaration(statement)) {
      const members = literalUnion(statement.type);
      assert.ok(members, `types.ts: type ${statement.name.text} is not a union of string literals (an enum); this test knows no other aliases`);
      unions.set(statement.name.text, members);
    }
  }
  return { interfaces, unions };
}

function normalise(typeText: string): string {
  return typeText.replace(/\s+/g, ' ').trim();
}

function camel(name: string): string {
  return name.replace(/_([a-z])/g, (_m, c: string) => c.toUpperCase());
}

/** `devicemesh.v1.Mapping`, without protobufjs's leading dot. */
function fullNameOf(reflection: protobuf.ReflectionObject): string {
  return reflection.fullName.replace(/^\./, '');
}

/** The name types.ts gives a proto message or enum, if it mirrors it. */
function tsNameOf(reflection: protobuf.ReflectionObject): string | undefined {
  const fullName = fullNameOf(reflection);
  const foreign = Object.entries(FOREIGN).find(([, f]) => f.message === fullName);
  if (foreign) return foreign[0];
  return fullName.startsWith('devicemesh.v1.') ? fullName.slice('devicemesh.v1.'.length).replace(/\./g, '') : undefined;
}

const SCALARS: Readonly<Record<string, string>> = {
  string: 'string',
  bytes: 'Buffer',
  bool: 'boolean',
  double: 'number',
  float: 'number',
  int32: 'number',
  uint32: 'number',
  sint32: 'number',
  fixed32: 'number',
  sfixed32: 'number',
  // OBJECT_OPTIONS.longs = String
  int64: 'string',
  uint64: 'string',
  sint64: 'string',
  fixed64: 'string',
  sfixed64: 'string',
};

/** Whether a TS type (text) is the decoded form of one value of `field` (not its repetition). */
function valueMatches(field: protobuf.Field, typeText: string, unions: ReadonlyMap<string, string[]>): string | undefined {
  const resolved = field.resolvedType;
  if (resolved instanceof protobuf.Enum) {
    const values = Object.keys(resolved.values);
    const name = tsNameOf(resolved);
    // A named alias's values are compared with the enum's once, below.
    if (name !== undefined && unions.has(name)) return typeText === name ? undefined : `is ${typeText}, expected ${name} (${fullNameOf(resolved)})`;
    const inline = typeText.split('|').map((t) => t.trim().replace(/^'(.*)'$/, '$1'));
    return sameSet(inline, values) ? undefined : `is ${typeText}, the proto's enum ${fullNameOf(resolved)} has [${values.join(', ')}]`;
  }
  if (resolved instanceof protobuf.Type) {
    const name = tsNameOf(resolved);
    // A message without a named mirror (a Struct, say) may be written inline.
    if (name === undefined) return /^\{.*\}$/.test(typeText) ? undefined : `is ${typeText}, expected an inline object for ${fullNameOf(resolved)}`;
    return typeText === name ? undefined : `is ${typeText}, expected ${name} (${fullNameOf(resolved)})`;
  }
  const scalar = SCALARS[field.type];
  return typeText === scalar ? undefined : `is ${typeText}, expected ${String(scalar)} for proto ${field.type}`;
}

function fieldProblem(field: protobuf.Field, typeText: string, unions: ReadonlyMap<string, string[]>): string | undefined {
  if (field instanceof protobuf.MapField) {
    const m = /^Record<string, (.+)>$/.exec(typeText);
    if (field.keyType !== 'string' || !m) return `is ${typeText}, expected Record<string, …> for map<${field.keyType}, ${field.type}>`;
    return valueMatches(field, m[1] as string, unions);
  }
  if (field.repeated) {
    const m = /^(.+)\[\]$/.exec(typeText);
    if (!m) return `is ${typeText}, expected an array for repeated ${field.type}`;
    return valueMatches(field, m[1] as string, unions);
  }
  if (field.resolvedType instanceof protobuf.Type) {
    // A singular message is null when unset (OBJECT_OPTIONS.defaults).
    const m = /^(.+) \| null$/.exec(typeText);
    if (!m) return `is ${typeText}, expected "… | null" for message ${field.type}`;
    return valueMatches(field, m[1] as string, unions);
  }
  return valueMatches(field, typeText, unions);
}

function sameSet(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && [...a].sort().join('\0') === [...b].sort().join('\0');
}

/** Every difference between the declarations of types.ts and the protos, one line each. */
function drift(root: protobuf.Root, declarations: TsDeclarations): string[] {
  const problems: string[] = [];
  for (const [name, fields] of declarations.interfaces) {
    const foreign = FOREIGN[name];
    const message = root.lookup(foreign?.message ?? `devicemesh.v1.${name}`);
    if (!(message instanceof protobuf.Type)) {
      problems.push(`interface ${name}: no message ${foreign?.message ?? `devicemesh.v1.${name}`} in the protos`);
      continue;
    }
    const byName = new Map(message.fieldsArray.map((f) => [f.name, f]));
    for (const f of fields) {
      // protobufjs keeps Any's type_url as written; every other field is camelCase.
      const field = byName.get(f.name) ?? byName.get(camel(f.name));
      if (!field) {
        problems.push(`${name}.${f.name}: no such field in ${fullNameOf(message)}`);
        continue;
      }
      const problem = fieldProblem(field, f.type, declarations.unions);
      if (problem) problems.push(`${name}.${f.name} ${problem}`);
    }
    if (!foreign?.subset) {
      const declared = new Set(fields.flatMap((f) => [f.name, camel(f.name)]));
      for (const field of message.fieldsArray) if (!declared.has(field.name)) problems.push(`${name}: lacks field ${field.name} of ${fullNameOf(message)}`);
    }
  }
  for (const [name, members] of declarations.unions) {
    const found = root.lookup(`devicemesh.v1.${name}`);
    if (!(found instanceof protobuf.Enum)) {
      problems.push(`type ${name}: no enum devicemesh.v1.${name} in the protos`);
      continue;
    }
    const values = Object.keys(found.values);
    if (!sameSet(members, values)) problems.push(`type ${name} is [${members.join(', ')}], enum ${fullNameOf(found)} is [${values.join(', ')}]`);
  }
  return problems;
}

describe('src/proto/types conformance with proto/*.proto', () => {
  const root = loadProtos();

  it('declares every message field and enum value the protos have, with the decoded type, and nothing else', () => {
    const declarations = parseTypes(TYPES_FILE);
    assert.ok(declarations.interfaces.has('Mapping') && declarations.unions.has('SharingMode'), 'types.ts was read');
    assert.deepEqual(drift(root, declarations), []);
  });

  it('reports a drift: a field renamed, retyped, dropped; an enum value added', () => {
    const text = fs
      .readFileSync(TYPES_FILE, 'utf8')
      .replace('  devicePath: string;\n', '  devicePathname: string;\n')
      .replace('  queueDepth: number;\n', '  queueDepth: string;\n')
      .replace('  nanos: number;\n', '')
      .replace("  | 'SHARING_MODE_BROADCAST';", "  | 'SHARING_MODE_BROADCAST'\n  | 'SHARING_MODE_ROUND_ROBIN';");
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dm-types-'));
    const drifted = path.join(dir, 'types.ts');
    fs.writeFileSync(drifted, text);
    const problems = drift(root, parseTypes(drifted));
    fs.rmSync(dir, { recursive: true });
    const sharing = 'SHARING_MODE_UNSPECIFIED, SHARING_MODE_EXCLUSIVE, SHARING_MODE_SHARED, SHARING_MODE_TIME_SLICE, SHARING_MODE_BROADCAST';
    assert.deepEqual(problems.sort(), [
      'Mapping.devicePathname: no such field in devicemesh.v1.Mapping',
      'Mapping: lacks field devicePath of devicemesh.v1.Mapping',
      'Policy.queueDepth is string, expected number for proto uint32',
      'Timestamp: lacks field nanos of google.protobuf.Timestamp',
      `type SharingMode is [${sharing}, SHARING_MODE_ROUND_ROBIN], enum devicemesh.v1.SharingMode is [${sharing}]`,
    ]);
  });
});
