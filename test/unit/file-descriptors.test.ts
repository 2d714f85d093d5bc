import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as descriptor from 'protobufjs/ext/descriptor';
import { buildFileDescriptors, FileDescriptorIndex, ServedFile } from '../../src/grpc/file-descriptors';
import { DEVICEMESH_PROTO_ROOT, SERVED_PROTO_FILES } from '../../src/proto/paths';

type FileProto = descriptor.IFileDescriptorProto & { dependency: string[] };

/** Decodes what goes on the wire, so that the tests see exactly what a client sees. */
function decode(file: ServedFile): FileProto {
  return descriptor.FileDescriptorProto.toObject(descriptor.FileDescriptorProto.decode(file.descriptor), { arrays: true }) as FileProto;
}

function qualify(scope: string, name: string | undefined): string {
  return scope ? `${scope}.${name}` : `${name}`;
}

/** Full names (no leading dot) of the messages and enums a file defines, nested ones included. */
function definedTypes(file: FileProto): string[] {
  const out: string[] = [];
  const walk = (scope: string, messages: descriptor.IDescriptorProto[] = [], enums: descriptor.IEnumDescriptorProto[] = []): void => {
    for (const e of enums) out.push(qualify(scope, e.name));
    for (const m of messages) {
      const name = qualify(scope, m.name);
      out.push(name);
      walk(name, m.nestedType, m.enumType);
    }
  };
  walk(file.package ?? '', file.messageType, file.enumType);
  return out;
}

/** Every type name a file refers to: field types, extendees, method inputs and outputs. */
function referencedTypes(file: FileProto): string[] {
  const out: string[] = [];
  const fields = (list: descriptor.IFieldDescriptorProto[] = []): void => {
    for (const f of list) {
      if (f.typeName) out.push(f.typeName);
      if (f.extendee) out.push(f.extendee);
    }
  };
  const messages = (list: descriptor.IDescriptorProto[] = []): void => {
    for (const m of list) {
      fields(m.field);
      fields(m.extension);
      messages(m.nestedType);
    }
  };
  messages(file.messageType);
  fields(file.extension);
  for (const s of file.service ?? []) for (const m of s.method ?? []) out.push(m.inputType ?? '', m.outputType ?? '');
  return out;
}

/** Options as set, without the empty repeated fields that decoding with `arrays` adds. */
function setOptions(options: object | undefined): Record<string, unknown> | undefined {
  if (!options) return undefined;
  return Object.fromEntries(Object.entries(options).filter(([, v]) => !(Array.isArray(v) && v.length === 0)));
}

function findMessage(file: FileProto, name: string): descriptor.IDescriptorProto {
  const found = file.messageType?.find((m) => m.name === name);
  assert.ok(found, `${file.name} has no message ${name}`);
  return found;
}

/** Field names per file as written in the .proto source, read independently of protobufjs. */
function fieldNamesInSource(file: string): string[] {
  const source = fs.readFileSync(path.join(DEVICEMESH_PROTO_ROOT, file), 'utf8');
  const field = /^\s*(?:repeated\s+|optional\s+)?(?:map<[^>]+>|[\w.]+)\s+(\w+)\s*=\s*\d+\s*;/gm;
  return [...source.matchAll(field)].map((m) => m[1]).sort();
}

describe('file descriptors', function () {
  let index: FileDescriptorIndex;
  const files = new Map<string, FileProto>();

  before(function () {
    index = buildFileDescriptors();
    for (const name of index.fileNames()) {
      const served = index.file(name);
      assert.ok(served);
      files.set(name, decode(served));
    }
  });

  function file(name: string): FileProto {
    const found = files.get(name);
    assert.ok(found, `${name} is not served`);
    return found;
  }

  it('serves one descriptor per .proto file, under the name it is imported by', function () {
    for (const name of [
      ...SERVED_PROTO_FILES,
      'devicemesh/v1/endpoint.proto',
      'envoy/service/discovery/v3/discovery.proto',
      'envoy/config/core/v3/base.proto',
      'google/rpc/status.proto',
      'validate/validate.proto',
      'google/protobuf/descriptor.proto',
    ]) {
      assert.equal(file(name).name, name);
    }
    for (const [name, proto] of files) {
      assert.equal(proto.name, name);
      assert.match(name, /^[\w/]+\.proto$/);
      assert.ok(proto.syntax === 'proto2' || proto.syntax === 'proto3', `${name}: syntax ${proto.syntax}`);
    }
  });

  it('serves the well-known types as their own files', function () {
    const wellKnown: Record<string, string[]> = {
      'google/protobuf/timestamp.proto': ['Timestamp'],
      'google/protobuf/duration.proto': ['Duration'],
      'google/protobuf/empty.proto': ['Empty'],
      'google/protobuf/any.proto': ['Any'],
      'google/protobuf/struct.proto': ['Struct', 'Value', 'ListValue', 'NullValue'],
      'google/protobuf/wrappers.proto': ['DoubleValue', 'BoolValue', 'StringValue', 'UInt64Value'],
    };
    for (const [name, types] of Object.entries(wellKnown)) {
      const proto = file(name);
      assert.equal(proto.package, 'google.protobuf');
      assert.equal(proto.syntax, 'proto3');
      assert.deepEqual(proto.dependency, []);
      for (const type of types) assert.ok(definedTypes(proto).includes(`google.protobuf.${type}`), `${name} lacks ${type}`);
    }
    const descriptorProto = file('google/protobuf/descriptor.proto');
    assert.equal(descriptorProto.syntax, 'proto2');
    assert.deepEqual(findMessage(descriptorProto, 'FieldOptions').extensionRange, [{ start: 1000, end: 536870912 }]);
  });

  it('serves every dependency that a served file declares', function () {
    for (const [name, proto] of files) {
      for (const dep of proto.dependency) assert.ok(files.has(dep), `${name} imports ${dep}, which is not served`);
    }
  });

  it('defines every referenced type in the file itself or in one of its declared dependencies', function () {
    const definedIn = new Map<string, string>();
    for (const [name, proto] of files) {
      for (const type of definedTypes(proto)) {
        assert.ok(!definedIn.has(type), `${type} is defined in both ${definedIn.get(type)} and ${name}`);
        definedIn.set(type, name);
      }
    }
    let checked = 0;
    for (const [name, proto] of files) {
      const visible = new Set([name, ...proto.dependency]);
      for (const ref of referencedTypes(proto)) {
        assert.match(ref, /^\.\w/, `${name}: type name ${ref} is not fully qualified`);
        const home = definedIn.get(ref.slice(1));
        assert.ok(home, `${name} refers to ${ref}, which no served file defines`);
        assert.ok(visible.has(home), `${name} refers to ${ref} from ${home}, which it does not import`);
        checked++;
      }
    }
    assert.ok(checked > 200, `only ${checked} references checked`);
  });

  it('keeps field names as written in the .proto, with their JSON names', function () {
    for (const name of files.keys()) {
      if (!name.startsWith('devicemesh/')) continue;
      const names: string[] = [];
      const walk = (messages: descriptor.IDescriptorProto[] = []): void => {
        for (const m of messages) {
          if (!m.options?.mapEntry) for (const f of m.field ?? []) names.push(f.name ?? '');
          walk(m.nestedType);
        }
      };
      walk(file(name).messageType);
      assert.deepEqual(names.sort(), fieldNamesInSource(name), name);
    }
    const endpoint = findMessage(file('devicemesh/v1/endpoint.proto'), 'PhysicalEndpoint');
    const hostId = endpoint.field?.find((f) => f.name === 'host_id');
    assert.equal(hostId?.jsonName, 'hostId');
    assert.ok(findMessage(file('google/protobuf/any.proto'), 'Any').field?.some((f) => f.name === 'type_url'));
    assert.ok(findMessage(file('google/protobuf/struct.proto'), 'Value').field?.some((f) => f.name === 'null_value'));
    const request = findMessage(file('envoy/service/discovery/v3/discovery.proto'), 'DiscoveryRequest');
    for (const field of ['version_info', 'resource_names', 'type_url', 'response_nonce', 'error_detail']) {
      assert.ok(request.field?.some((f) => f.name === field), `DiscoveryRequest lacks ${field}`);
    }
  });

  it('declares the imports of registry.proto exactly as written', function () {
    assert.deepEqual(file('devicemesh/v1/registry.proto').dependency, ['google/protobuf/empty.proto', 'devicemesh/v1/endpoint.proto']);
    assert.equal(file('devicemesh/v1/registry.proto').package, 'devicemesh.v1');
  });

  it('describes map fields with protoc-style entry messages', function () {
    const endpoint = findMessage(file('devicemesh/v1/endpoint.proto'), 'PhysicalEndpoint');
    const labels = endpoint.field?.find((f) => f.name === 'labels');
    assert.equal(labels?.typeName, '.devicemesh.v1.PhysicalEndpoint.LabelsEntry');
    assert.equal(labels?.label, 3);
    const entry = endpoint.nestedType?.find((m) => m.name === 'LabelsEntry');
    assert.equal(entry?.options?.mapEntry, true);
    assert.deepEqual(entry?.field?.map((f) => [f.name, f.number, f.type]), [['key', 1, 9], ['value', 2, 9]]);
  });

  it('describes proto3 optional fields with synthetic oneofs after the real ones', function () {
    const serial = findMessage(file('devicemesh/v1/policy.proto'), 'SerialConfig');
    const dtr = serial.field?.find((f) => f.name === 'dtr');
    assert.equal(dtr?.proto3Optional, true);
    assert.equal(serial.oneofDecl?.[dtr?.oneofIndex ?? -1]?.name, '_dtr');
    const value = findMessage(file('google/protobuf/struct.proto'), 'Value');
    assert.deepEqual(value.oneofDecl?.map((o) => o.name), ['kind']);
    assert.ok(value.field?.every((f) => f.oneofIndex === 0 && !f.proto3Optional));
  });

  it('describes nested enums and streaming methods', function () {
    const registry = file('devicemesh/v1/registry.proto');
    const event = findMessage(registry, 'EndpointEvent');
    assert.equal(event.enumType?.[0]?.name, 'Type');
    assert.equal(event.field?.find((f) => f.name === 'type')?.typeName, '.devicemesh.v1.EndpointEvent.Type');
    const methods = registry.service?.[0]?.method ?? [];
    assert.equal(methods.find((m) => m.name === 'WatchEndpoints')?.serverStreaming, true);
    assert.equal(methods.find((m) => m.name === 'ListEndpoints')?.serverStreaming, undefined);
    const ads = file('envoy/service/discovery/v3/ads.proto').service?.[0]?.method?.[0];
    assert.deepEqual([ads?.name, ads?.clientStreaming, ads?.serverStreaming], ['StreamAggregatedResources', true, true]);
  });

  it('keeps extension definitions and indexes them by extended type', function () {
    const rules = file('validate/validate.proto').extension?.find((f) => f.name === 'rules');
    assert.deepEqual([rules?.extendee, rules?.number, rules?.typeName], ['.google.protobuf.FieldOptions', 1071, '.validate.FieldRules']);
    assert.equal(index.fileContainingExtension('google.protobuf.FieldOptions', 1071)?.name, 'validate/validate.proto');
    assert.ok(index.extensionNumbers('.google.protobuf.FieldOptions')?.includes(1071));
    assert.deepEqual(index.extensionNumbers('devicemesh.v1.Policy'), []);
    assert.equal(index.extensionNumbers('devicemesh.v1.NoSuchType'), undefined);
    // Standard options survive; custom ones are dropped rather than served half-encoded.
    const weak = findMessage(file('google/protobuf/descriptor.proto'), 'FieldOptions').field?.find((f) => f.name === 'weak');
    assert.deepEqual(setOptions(weak?.options), { deprecated: true });
    const base = file('envoy/config/core/v3/base.proto');
    // [deprecated = true, (envoy.annotations.deprecated_at_minor_version) = "3.0"]
    assert.deepEqual(setOptions(findMessage(base, 'Extension').field?.find((f) => f.name === 'type_descriptor')?.options), { deprecated: true });
    // [(validate.rules).string = {min_len: 1}], in a message with option (udpa.annotations.versioning)
    const runtime = findMessage(base, 'RuntimeUInt32');
    assert.equal(runtime.field?.find((f) => f.name === 'runtime_key')?.options, undefined);
    assert.equal(runtime.options, undefined);
  });

  it('finds the file of every kind of symbol', function () {
    const cases: [string, string][] = [
      ['devicemesh.v1.Registry', 'devicemesh/v1/registry.proto'],
      ['devicemesh.v1.Registry.WatchEndpoints', 'devicemesh/v1/registry.proto'],
      ['.devicemesh.v1.PhysicalEndpoint', 'devicemesh/v1/endpoint.proto'],
      ['devicemesh.v1.PhysicalEndpoint.labels', 'devicemesh/v1/endpoint.proto'],
      ['devicemesh.v1.PhysicalEndpoint.LabelsEntry', 'devicemesh/v1/endpoint.proto'],
      ['devicemesh.v1.EndpointEvent.Type', 'devicemesh/v1/registry.proto'],
      ['devicemesh.v1.DEVICE_KIND_SERIAL', 'devicemesh/v1/endpoint.proto'],
      ['envoy.config.core.v3.Node', 'envoy/config/core/v3/base.proto'],
      ['google.protobuf.Timestamp', 'google/protobuf/timestamp.proto'],
      ['validate.rules', 'validate/validate.proto'],
    ];
    for (const [symbol, expected] of cases) assert.equal(index.fileContainingSymbol(symbol)?.name, expected, symbol);
    assert.equal(index.fileContainingSymbol('devicemesh.v1.Nope'), undefined);
  });

  it('lists a file first and then all its transitive dependencies, once each', function () {
    const ads = index.file('envoy/service/discovery/v3/ads.proto');
    assert.ok(ads);
    const names = index.withDependencies(ads).map((f) => f.name);
    assert.equal(names[0], 'envoy/service/discovery/v3/ads.proto');
    assert.equal(new Set(names).size, names.length);
    for (const name of names) for (const dep of file(name).dependency) assert.ok(names.includes(dep), `${dep} of ${name} missing`);
    for (const name of ['envoy/config/core/v3/base.proto', 'google/rpc/status.proto', 'google/protobuf/descriptor.proto']) {
      assert.ok(names.includes(name), `${name} missing`);
    }
    const skipped = index.withDependencies(ads, new Set(['envoy/service/discovery/v3/discovery.proto'])).map((f) => f.name);
    assert.deepEqual(skipped, names.filter((n) => n !== 'envoy/service/discovery/v3/discovery.proto'));
    assert.deepEqual(index.withDependencies(ads, new Set([ads.name])).map((f) => f.name), names);
  });
});
