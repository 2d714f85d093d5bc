import * as fs from 'node:fs';
import * as protobuf from 'protobufjs';
import * as descriptor from 'protobufjs/ext/descriptor';
import { DeviceMeshError, errorMessage, NotFoundError } from '../errors';
import { includeDirs, protobufjsProtoRoot, resolveProtoFile, SERVED_PROTO_FILES } from '../proto/paths';

/** One .proto file as served over reflection. */
export interface ServedFile {
  /** The name it is imported by, e.g. `devicemesh/v1/registry.proto`. */
  readonly name: string;
  /** Its imports, exactly as written in the .proto. */
  readonly dependencies: readonly string[];
  /** The serialized `google.protobuf.FileDescriptorProto`. */
  readonly descriptor: Uint8Array;
}

/** The descriptors of a set of .proto files and their imports, with the lookups reflection needs. */
export interface FileDescriptorIndex {
  /** Every served file's name. */
  fileNames(): string[];
  file(name: string): ServedFile | undefined;
  /** The file defining a message, enum, service, method, field, oneof, enum value or extension, by full name. */
  fileContainingSymbol(symbol: string): ServedFile | undefined;
  fileContainingExtension(messageType: string, number: number): ServedFile | undefined;
  /** The extension numbers known for a message type; undefined when there is no such message. */
  extensionNumbers(messageType: string): number[] | undefined;
  /**
   * `file` followed by its transitive dependencies, leaving out those in `skip` (never `file` itself):
   * a client then has everything it needs to build the file, as grpc-go's reflection answers.
   */
  withDependencies(file: ServedFile, skip?: ReadonlySet<string>): ServedFile[];
}

/** A FileDescriptorProto as built here: always named, with its dependency list. */
type FileProto = descriptor.IFileDescriptorProto & { name: string; dependency: string[] };

class Index implements FileDescriptorIndex {
  private readonly files = new Map<string, ServedFile>();
  private readonly symbols = new Map<string, string>();
  private readonly messages = new Set<string>();
  private readonly extensions = new Map<string, Map<number, string>>();

  constructor(protos: readonly FileProto[]) {
    for (const proto of protos) {
      const name = proto.name;
      const bytes = descriptor.FileDescriptorProto.encode(descriptor.FileDescriptorProto.fromObject(proto)).finish();
      this.files.set(name, { name, dependencies: proto.dependency, descriptor: bytes });
      indexFile(proto, {
        symbol: (symbol: string): void => {
          const other = this.symbols.get(symbol);
          if (other !== undefined) throw new DeviceMeshError('INTERNAL', `${symbol} is defined in both ${other} and ${name}`);
          this.symbols.set(symbol, name);
        },
        message: (symbol: string): void => {
          this.messages.add(symbol);
        },
        extension: (extendee: string, number: number): void => {
          let numbers = this.extensions.get(extendee);
          if (!numbers) this.extensions.set(extendee, (numbers = new Map()));
          numbers.set(number, name);
        },
      });
    }
  }

  fileNames(): string[] {
    return [...this.files.keys()];
  }

  file(name: string): ServedFile | undefined {
    return this.files.get(name);
  }

  fileContainingSymbol(symbol: string): ServedFile | undefined {
    const name = this.symbols.get(symbol.replace(/^\./, ''));
    return name === undefined ? undefined : this.files.get(name);
  }

  fileContainingExtension(messageType: string, number: number): ServedFile | undefined {
    const name = this.extensions.get(messageType.replace(/^\./, ''))?.get(number);
    return name === undefined ? undefined : this.files.get(name);
  }

  extensionNumbers(messageType: string): number[] | undefined {
    const type = messageType.replace(/^\./, '');
    if (!this.messages.has(type)) return undefined;
    return [...(this.extensions.get(type)?.keys() ?? [])].sort((a, b) => a - b);
  }

  withDependencies(file: ServedFile, skip: ReadonlySet<string> = new Set()): ServedFile[] {
    const all = [file];
    const seen = new Set([file.name]);
    for (let i = 0; i < all.length; i++) {
      for (const dep of all[i].dependencies) {
        if (seen.has(dep)) continue;
        seen.add(dep);
        const served = this.files.get(dep);
        if (!served) throw new DeviceMeshError('INTERNAL', `${all[i].name} imports ${dep}, which is not served`);
        all.push(served);
      }
    }
    return all.filter((f, i) => i === 0 || !skip.has(f.name));
  }
}

/**
 * Builds one FileDescriptorProto per .proto file for `files` (by default the control plane's) and
 * everything they import, searching `includeDirs()`, then `extraRoots`, then protobufjs's own protos.
 */
export function buildFileDescriptors(
  files: readonly string[] = SERVED_PROTO_FILES,
  extraRoots: readonly string[] = [],
): FileDescriptorIndex {
  const roots = [...includeDirs(), ...extraRoots, protobufjsProtoRoot()];
  const { root, sources } = loadFiles(files, roots);

  const definitions = new Map<string, Definition[]>([...sources.keys()].map((name) => [name, []]));
  for (const def of topLevelDefinitions(root)) {
    const list = def.filename === null ? undefined : definitions.get(def.filename);
    if (!list) throw new DeviceMeshError('INTERNAL', `${def.fullName} comes from no loaded file (${def.filename})`);
    list.push(def);
  }
  return new Index([...sources.values()].map((source) => fileProto(source, definitions.get(source.name) ?? [])));
}

/** What one file declares beyond its definitions, which protobufjs does not keep per file. */
interface SourceFile {
  name: string;
  package: string;
  imports: string[];
  weakImports: string[];
  options: Record<string, unknown> | undefined;
}

type Definition = protobuf.Type | protobuf.Enum | protobuf.Service | protobuf.Field;

// The parser stamps `parse.filename` on every object it creates (documented, but missing from the typings).
const parser = protobuf.parse as typeof protobuf.parse & { filename: string | null };

/** Parses the files and their imports into one root, so that types resolve across files. */
function loadFiles(files: readonly string[], roots: readonly string[]): { root: protobuf.Root; sources: Map<string, SourceFile> } {
  const root = new protobuf.Root();
  const sources = new Map<string, SourceFile>();
  const pending = [...files];
  // Imports are appended to `pending` while it is iterated, which visits them too.
  for (const name of pending) {
    if (sources.has(name)) continue;
    // protobufjs bundles some well-known types as JSON instead of .proto files; those import nothing.
    const bundled = protobuf.common.get(name);
    if (bundled) {
      sources.set(name, { name, ...addBundled(root, bundled, name), imports: [], weakImports: [], options: undefined });
      continue;
    }
    const file = resolveProtoFile(name, roots);
    if (!file) throw new NotFoundError(`${name} is in none of the proto include directories ${roots.join(', ')}`);
    let parsed: protobuf.IParserResult;
    try {
      parser.filename = name;
      parsed = protobuf.parse(fs.readFileSync(file, 'utf8'), root, { keepCase: true });
    } catch (err) {
      throw new DeviceMeshError('INTERNAL', `cannot parse ${file}: ${errorMessage(err)}`, { cause: err });
    }
    const options = takeFileOptions([root, parsed.package ? root.define(parsed.package) : root]);
    const imports = parsed.imports ?? [];
    const weakImports = parsed.weakImports ?? [];
    sources.set(name, { name, package: parsed.package ?? '', imports, weakImports, options });
    pending.push(...imports, ...weakImports);
  }
  try {
    root.resolveAll();
  } catch (err) {
    throw new DeviceMeshError('INTERNAL', `cannot resolve the types of ${files.join(', ')}: ${errorMessage(err)}`, { cause: err });
  }
  return { root, sources };
}

/**
 * The parser puts file options on the package namespace (or on the root, before `package`), which
 * every file of the package shares: taking them off after each file gives each file its own.
 */
function takeFileOptions(scopes: protobuf.Namespace[]): Record<string, unknown> | undefined {
  let options: Record<string, unknown> | undefined;
  for (const scope of new Set(scopes)) {
    if (scope.options) options = { ...options, ...scope.options };
    scope.options = undefined;
    scope.parsedOptions = undefined;
  }
  return options;
}

/** Adds a bundled definition to `root`, attributing its top-level definitions to file `name`. */
function addBundled(root: protobuf.Root, json: protobuf.INamespace, name: string): { package: string } {
  const defs = topLevelDefinitions(protobuf.Root.fromJSON(json));
  root.addJSON(json.nested ?? {});
  const packages = new Set<string>();
  for (const def of defs) {
    packages.add(def.parent?.fullName.slice(1) ?? '');
    const added = root.lookup(def.fullName);
    if (!added) throw new DeviceMeshError('INTERNAL', `bundled ${name}: ${def.fullName} was not added`);
    added.filename = name;
  }
  if (packages.size !== 1) throw new DeviceMeshError('INTERNAL', `bundled ${name} does not define exactly one package`);
  return { package: [...packages][0] };
}

/** Messages, enums, services and extensions directly in packages, wherever they come from. */
function topLevelDefinitions(ns: protobuf.Namespace): Definition[] {
  const out: Definition[] = [];
  for (const obj of ns.nestedArray) {
    if (obj instanceof protobuf.Type || obj instanceof protobuf.Service || obj instanceof protobuf.Enum || obj instanceof protobuf.Field) {
      out.push(obj);
    } else if (obj instanceof protobuf.Namespace) {
      out.push(...topLevelDefinitions(obj));
    }
  }
  return out;
}

function fileProto(source: SourceFile, defs: readonly Definition[]): FileProto {
  return {
    name: source.name,
    package: source.package || undefined,
    dependency: [...source.imports, ...source.weakImports],
    weakDependency: source.weakImports.map((_, i) => source.imports.length + i),
    messageType: defs.filter((d): d is protobuf.Type => d instanceof protobuf.Type).map(messageProto),
    enumType: defs.filter((d): d is protobuf.Enum => d instanceof protobuf.Enum).map(enumProto),
    service: defs.filter((d): d is protobuf.Service => d instanceof protobuf.Service).map(serviceProto),
    extension: defs.filter((d): d is protobuf.Field => d instanceof protobuf.Field).map((f) => fieldProto(f, [])),
    options: standardOptions(source.options, descriptor.FileOptions),
    syntax: syntaxOf(source.name, defs),
  };
}

/** proto2 or proto3, from the edition protobufjs records on a file's top-level definitions. */
function syntaxOf(file: string, defs: readonly Definition[]): string {
  // A file without definitions has nothing the syntax could apply to.
  const edition = defs.length === 0 ? undefined : defs[0]._editionToJSON();
  if (edition === undefined) return 'proto3';
  if (edition === 'proto2') return 'proto2';
  throw new DeviceMeshError('INTERNAL', `${file}: edition ${edition} is not supported`);
}

function messageProto(type: protobuf.Type): descriptor.IDescriptorProto {
  // Sister fields that protobufjs adds to a type for extensions declared elsewhere are not the type's own.
  const fields = type.fieldsArray.filter((f) => !f.declaringField);
  // Synthetic oneofs of proto3 `optional` must follow the real ones.
  const oneofs = [
    ...type.oneofsArray.filter((o) => !o.isProto3Optional),
    ...type.oneofsArray.filter((o) => o.isProto3Optional),
  ];
  const nested = type.nestedArray;
  return {
    name: type.name,
    field: fields.map((f) => fieldProto(f, oneofs)),
    extension: nested.filter((n): n is protobuf.Field => n instanceof protobuf.Field).map((f) => fieldProto(f, [])),
    nestedType: [
      ...fields.filter((f): f is MapField => f instanceof protobuf.MapField).map(mapEntryProto),
      ...nested.filter((n): n is protobuf.Type => n instanceof protobuf.Type).map(messageProto),
    ],
    enumType: nested.filter((n): n is protobuf.Enum => n instanceof protobuf.Enum).map(enumProto),
    // protobufjs keeps ranges inclusive; descriptors want the end exclusive.
    extensionRange: (type.extensions ?? []).map(([start, end]) => ({ start, end: end + 1 })),
    oneofDecl: oneofs.map((o) => ({ name: o.name, options: standardOptions(o.options, descriptor.OneofOptions) })),
    reservedRange: (type.reserved ?? []).filter((r): r is number[] => typeof r !== 'string').map(([start, end]) => ({ start, end: end + 1 })),
    reservedName: (type.reserved ?? []).filter((r): r is string => typeof r === 'string'),
    options: standardOptions(type.options, descriptor.MessageOptions),
  };
}

const LABEL_OPTIONAL = 1;
const LABEL_REQUIRED = 2;
const LABEL_REPEATED = 3;
const TYPE_GROUP = 10;
const TYPE_MESSAGE = 11;
const TYPE_ENUM = 14;

const SCALAR_TYPES: ReadonlyMap<string, number> = new Map([
  ['double', 1], ['float', 2], ['int64', 3], ['uint64', 4], ['int32', 5], ['fixed64', 6], ['fixed32', 7],
  ['bool', 8], ['string', 9], ['bytes', 12], ['uint32', 13], ['sfixed32', 15], ['sfixed64', 16], ['sint32', 17], ['sint64', 18],
]);

function fieldProto(field: protobuf.Field, oneofs: readonly protobuf.OneOf[]): descriptor.IFieldDescriptorProto {
  const proto: descriptor.IFieldDescriptorProto = {
    name: field.protoName,
    number: field.id,
    jsonName: field.jsonName,
    options: standardOptions(field.options, descriptor.FieldOptions),
  };
  if (field instanceof protobuf.MapField) {
    proto.label = LABEL_REPEATED;
    proto.type = TYPE_MESSAGE;
    proto.typeName = `${field.parent?.fullName}.${mapEntryName(field.protoName)}`;
  } else {
    proto.label = field.repeated ? LABEL_REPEATED : field.required ? LABEL_REQUIRED : LABEL_OPTIONAL;
    Object.assign(proto, valueType(field));
  }
  if (field.extend !== undefined) {
    const extendee = field.extensionField?.parent;
    if (!extendee) throw new DeviceMeshError('INTERNAL', `extension ${field.fullName} is unresolved`);
    proto.extendee = extendee.fullName;
  }
  if (field.partOf) {
    proto.oneofIndex = oneofs.indexOf(field.partOf);
    if (field.partOf.isProto3Optional) proto.proto3Optional = true;
  }
  const value: unknown = field.options?.default;
  if (value !== undefined) proto.defaultValue = defaultValue(value);
  return proto;
}

/** The type of a field's values (of a map's values for a map field), with fully-qualified names. */
function valueType(field: protobuf.Field): Pick<descriptor.IFieldDescriptorProto, 'type' | 'typeName'> {
  const scalar = SCALAR_TYPES.get(field.type);
  if (scalar !== undefined) return { type: scalar };
  const resolved = field.resolvedType;
  if (resolved instanceof protobuf.Enum) return { type: TYPE_ENUM, typeName: resolved.fullName };
  if (resolved instanceof protobuf.Type) return { type: field.delimited ? TYPE_GROUP : TYPE_MESSAGE, typeName: resolved.fullName };
  throw new DeviceMeshError('INTERNAL', `field ${field.fullName} has unresolved type ${field.type}`);
}

/** protoc's name for the entry message of a map field: `labels` -> `LabelsEntry`. */
function mapEntryName(fieldName: string): string {
  return `${fieldName.replace(/(?:^|_)([a-z]?)/g, (_, c: string) => c.toUpperCase())}Entry`;
}

// MapField derives from Field at runtime; the typings only say FieldBase.
type MapField = protobuf.Field & protobuf.MapField;

function mapEntryProto(field: MapField): descriptor.IDescriptorProto {
  const keyType = SCALAR_TYPES.get(field.keyType);
  if (keyType === undefined) throw new DeviceMeshError('INTERNAL', `map field ${field.fullName} has key type ${field.keyType}`);
  return {
    name: mapEntryName(field.protoName),
    field: [
      { name: 'key', number: 1, label: LABEL_OPTIONAL, type: keyType, jsonName: 'key' },
      { name: 'value', number: 2, label: LABEL_OPTIONAL, jsonName: 'value', ...valueType(field) },
    ],
    options: { mapEntry: true },
  };
}

/** A proto2 default in the text form descriptors use. */
function defaultValue(value: unknown): string {
  if (value === Infinity) return 'inf';
  if (value === -Infinity) return '-inf';
  if (typeof value === 'number' && Number.isNaN(value)) return 'nan';
  return String(value);
}

// The typings leave out the reserved ranges and names that EnumDescriptorProto has.
type EnumProto = descriptor.IEnumDescriptorProto & { reservedRange: { start: number; end: number }[]; reservedName: string[] };

function enumProto(enm: protobuf.Enum): EnumProto {
  return {
    name: enm.name,
    value: Object.entries(enm.values).map(([name, number]) => ({
      name,
      number,
      options: standardOptions(enm.valuesOptions?.[name], descriptor.EnumValueOptions),
    })),
    options: standardOptions(enm.options, descriptor.EnumOptions),
    // Enum reserved ranges are inclusive in both protobufjs and descriptors.
    reservedRange: (enm.reserved ?? []).filter((r): r is number[] => typeof r !== 'string').map(([start, end]) => ({ start, end })),
    reservedName: (enm.reserved ?? []).filter((r): r is string => typeof r === 'string'),
  };
}

function serviceProto(service: protobuf.Service): descriptor.IServiceDescriptorProto {
  return {
    name: service.name,
    method: service.methodsArray.map((m) => {
      if (!m.resolvedRequestType || !m.resolvedResponseType) throw new DeviceMeshError('INTERNAL', `method ${m.fullName} is unresolved`);
      return {
        name: m.name,
        inputType: m.resolvedRequestType.fullName,
        outputType: m.resolvedResponseType.fullName,
        // Set only when streaming, as protoc does.
        clientStreaming: m.requestStream === true || undefined,
        serverStreaming: m.responseStream === true || undefined,
        options: standardOptions(m.options, descriptor.MethodOptions),
      };
    }),
    options: standardOptions(service.options, descriptor.ServiceOptions),
  };
}

/**
 * The options of `optionsType` (e.g. google.protobuf.FieldOptions) that are plain single values, like
 * `deprecated`, `packed`, `allow_alias` or `go_package`. Custom options such as `(validate.rules)`
 * are dropped: serving them would need their extension definitions encoded as well.
 */
function standardOptions(options: Record<string, unknown> | undefined, optionsType: protobuf.Type): Record<string, unknown> | undefined {
  if (!options) return undefined;
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(options)) {
    const field = optionsType.fields[protobuf.util.camelCase(key)] as protobuf.Field | undefined;
    if (!field || field.repeated || field.resolve().resolvedType instanceof protobuf.Type) continue;
    out[field.name] = value;
  }
  return Object.keys(out).length > 0 ? out : undefined;
}

interface IndexSink {
  symbol(symbol: string): void;
  message(symbol: string): void;
  extension(extendee: string, number: number): void;
}

/** Reports every symbol a file defines, the way descriptor pools name them. */
function indexFile(file: descriptor.IFileDescriptorProto, sink: IndexSink): void {
  const scope = file.package ?? '';
  const qualify = (parent: string, name: string | undefined): string => (parent ? `${parent}.${name}` : `${name}`);
  const extensions = (parent: string, fields: descriptor.IFieldDescriptorProto[] | undefined): void => {
    for (const f of fields ?? []) {
      sink.symbol(qualify(parent, f.name));
      sink.extension((f.extendee ?? '').replace(/^\./, ''), f.number ?? 0);
    }
  };
  const enums = (parent: string, list: descriptor.IEnumDescriptorProto[] | undefined): void => {
    for (const e of list ?? []) {
      sink.symbol(qualify(parent, e.name));
      // Enum values are siblings of their enum, as in C++ scoping.
      for (const v of e.value ?? []) sink.symbol(qualify(parent, v.name));
    }
  };
  const messages = (parent: string, list: descriptor.IDescriptorProto[] | undefined): void => {
    for (const m of list ?? []) {
      const name = qualify(parent, m.name);
      sink.symbol(name);
      sink.message(name);
      for (const f of m.field ?? []) sink.symbol(qualify(name, f.name));
      for (const o of m.oneofDecl ?? []) sink.symbol(qualify(name, o.name));
      extensions(name, m.extension);
      enums(name, m.enumType);
      messages(name, m.nestedType);
    }
  };
  messages(scope, file.messageType);
  enums(scope, file.enumType);
  extensions(scope, file.extension);
  for (const s of file.service ?? []) {
    const name = qualify(scope, s.name);
    sink.symbol(name);
    for (const m of s.method ?? []) sink.symbol(qualify(name, m.name));
  }
}
