import * as assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import fc from 'fast-check';
import * as protobuf from 'protobufjs';
import { OBJECT_OPTIONS, protobufRoot, serviceClient, serviceDefinition } from '../../../src/proto/load';
import { includeDirs, protobufjsProtoRoot, protoFilesFor, resolveProtoFile, SERVED_PROTO_FILES, SERVICE_PROTO_FILES } from '../../../src/proto/paths';

/**
 * src/proto/load.ts builds gRPC service definitions from protobufjs without @grpc/proto-loader (which
 * would also build descriptors nobody reads, at start-up). This holds them to proto-loader's, the
 * definitions they replace: the same methods, paths, streaming and aliases, and the same objects
 * both ways for any message of any served method. The bytes may differ: proto-loader brings its own
 * protobufjs 7, which writes a proto3 scalar left at its default (`hostId: ""`); the repo's
 * protobufjs 8 leaves it out, as proto3 says; and 7 adds a synthetic oneof per `optional` field to the
 * object (`_dtr: 'dtr'`), which 8 does not. Both read each other's bytes to the same object, which is
 * what is held.
 */

const reference = protoLoader.loadSync([...SERVED_PROTO_FILES], { ...OBJECT_OPTIONS, includeDirs: includeDirs() });

function servicesOf(ns: protobuf.NamespaceBase): protobuf.Service[] {
  return ns.nestedArray.flatMap((o) => (o instanceof protobuf.Service ? [o] : o instanceof protobuf.Namespace ? servicesOf(o) : []));
}

const SERVICES = servicesOf(protobufRoot()).map((s) => s.fullName.slice(1));

const INT64 = fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }).map(String);
const UINT64 = fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }).map(String);

function scalar(type: string): fc.Arbitrary<unknown> | undefined {
  switch (type) {
    case 'string':
      return fc.string({ maxLength: 12 });
    case 'bool':
      return fc.boolean();
    case 'bytes':
      return fc.uint8Array({ maxLength: 12 }).map((b) => Buffer.from(b));
    case 'double':
      return fc.double({ noNaN: true });
    case 'float':
      return fc.float({ noNaN: true }).map((f) => Math.fround(f));
    case 'int32':
    case 'sint32':
    case 'sfixed32':
      return fc.integer();
    case 'uint32':
    case 'fixed32':
      return fc.integer({ min: 0, max: 2 ** 32 - 1 });
    case 'int64':
    case 'sint64':
    case 'sfixed64':
      return INT64;
    case 'uint64':
    case 'fixed64':
      return UINT64;
    default:
      return undefined;
  }
}

/** Any object of `type` in the shape callers hand the serializer, nested messages `depth` deep. */
function messageOf(type: protobuf.Type, depth: number): fc.Arbitrary<Record<string, unknown>> {
  const fields: Record<string, fc.Arbitrary<unknown>> = {};
  for (const field of type.fieldsArray) {
    field.resolve();
    let value = scalar(field.type);
    if (!value && field.resolvedType instanceof protobuf.Enum) value = fc.constantFrom(...Object.keys(field.resolvedType.values));
    if (!value && field.resolvedType instanceof protobuf.Type && depth > 0) value = messageOf(field.resolvedType, depth - 1);
    if (!value) continue;
    if (field instanceof protobuf.MapField) {
      const key = scalar(field.keyType) ?? fc.string();
      fields[field.name] = fc.array(fc.tuple(key.map(String), value), { maxLength: 2 }).map((entries) => Object.fromEntries(entries));
    } else {
      fields[field.name] = field.repeated ? fc.array(value, { maxLength: 2 }) : value;
    }
  }
  // One member of each oneof at most, as a caller sets it.
  const oneofMembers = new Set(type.oneofsArray.flatMap((o) => o.oneof));
  const plain = Object.fromEntries(Object.entries(fields).filter(([name]) => !oneofMembers.has(name)));
  const oneofs = type.oneofsArray.map((o) => fc.oneof(fc.constant({}), ...o.oneof.filter((n) => fields[n]).map((n) => (fields[n] as fc.Arbitrary<unknown>).map((v) => ({ [n]: v })))));
  return fc.tuple(fc.record(plain, { requiredKeys: [] }), ...oneofs).map(([base, ...chosen]) => Object.assign({}, base, ...chosen) as Record<string, unknown>);
}

/** proto-loader's object less protobufjs 7's synthetic oneofs of proto3 `optional` fields (`_dtr: 'dtr'`), which protobufjs 8 does not add. */
function withoutSyntheticOneofs(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(withoutSyntheticOneofs);
  if (value === null || typeof value !== 'object' || Buffer.isBuffer(value)) return value;
  const entries = Object.entries(value as Record<string, unknown>).filter(([k, v]) => !(k.startsWith('_') && v === k.slice(1)));
  return Object.fromEntries(entries.map(([k, v]) => [k, withoutSyntheticOneofs(v)]));
}

function referenceMethods(name: string): grpc.ServiceDefinition {
  return reference[name] as unknown as grpc.ServiceDefinition;
}

describe('proto: service definitions without proto-loader', () => {
  it('serves every service of every served file', () => {
    assert.deepEqual(
      [...SERVICES].sort(),
      Object.keys(reference)
        .filter((k) => !('format' in (reference[k] as object)))
        .sort(),
    );
  });

  it('finds each service in the one file (and its imports) that a process parses for it', () => {
    assert.deepEqual(Object.keys(SERVICE_PROTO_FILES).sort(), [...SERVICES].sort());
    const dirs = [...includeDirs(), protobufjsProtoRoot()];
    for (const [name, file] of Object.entries(SERVICE_PROTO_FILES)) {
      const alone = new protobuf.Root();
      alone.resolvePath = (_origin: string, target: string): string => resolveProtoFile(target, dirs) ?? target;
      alone.loadSync(file, { keepCase: false });
      assert.ok(alone.lookupService(name), `${name} in ${file}`);
    }
  });

  it("has proto-loader's methods: names, paths, streaming and lower-camel-case aliases", () => {
    for (const name of SERVICES) {
      const ours = serviceDefinition(name);
      const theirs = referenceMethods(name);
      assert.deepEqual(Object.keys(ours), Object.keys(theirs), name);
      for (const [method, def] of Object.entries(theirs)) {
        const mine = ours[method] as grpc.MethodDefinition<object, object>;
        for (const key of ['path', 'requestStream', 'responseStream', 'originalName'] as const) assert.equal(mine[key], def[key], `${name}.${method} ${key}`);
      }
      const client = serviceClient(name);
      assert.equal(client.serviceName, name.slice(name.lastIndexOf('.') + 1));
      assert.equal(serviceClient(name), client, 'one constructor per service');
    }
  });

  it("encodes and decodes any message of any method to proto-loader's object, each side reading the other's bytes", () => {
    for (const name of SERVICES) {
      const root = protobufRoot(protoFilesFor(name));
      for (const method of root.lookupService(name).methodsArray) {
        const ours = serviceDefinition(name)[method.name] as grpc.MethodDefinition<object, object>;
        const theirs = referenceMethods(name)[method.name] as grpc.MethodDefinition<object, object>;
        const sides = [
          [method.resolvedRequestType, ours.requestSerialize, ours.requestDeserialize, theirs.requestSerialize, theirs.requestDeserialize],
          [method.resolvedResponseType, ours.responseSerialize, ours.responseDeserialize, theirs.responseSerialize, theirs.responseDeserialize],
        ] as const;
        for (const [type, serialize, deserialize, refSerialize, refDeserialize] of sides) {
          fc.assert(
            fc.property(messageOf(type as protobuf.Type, 2), (value) => {
              const bytes = serialize(value);
              const refBytes = refSerialize(value);
              const expected = withoutSyntheticOneofs(refDeserialize(refBytes));
              assert.deepEqual(deserialize(bytes), expected);
              assert.deepEqual(withoutSyntheticOneofs(refDeserialize(bytes)), expected, 'a proto-loader peer reads our bytes');
              assert.deepEqual(deserialize(refBytes), expected, "we read a proto-loader peer's bytes");
            }),
            { numRuns: 25 },
          );
        }
      }
    }
  });

  it('decodes any bytes to an object that encodes back to itself, or throws: never a half-read message', () => {
    // Where the bytes are malformed protobufjs 7 and 8 differ (8 refuses field number 0 and skips a
    // field of the wrong wire type, which 7 read as an empty message): this holds our side alone.
    const method = serviceDefinition('devicemesh.v1.Registry').RegisterEndpoint as grpc.MethodDefinition<object, object>;
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 40 }), (raw) => {
        let value: object;
        try {
          value = method.requestDeserialize(Buffer.from(raw));
        } catch (err) {
          assert.ok(err instanceof Error);
          return;
        }
        assert.deepEqual(method.requestDeserialize(method.requestSerialize(value)), value);
      }),
      { numRuns: 300 },
    );
    assert.throws(() => method.requestDeserialize(Buffer.from([0x0a, 0x05, 0x41])), /index out of range/, 'a length past the end');
    assert.throws(() => method.requestDeserialize(Buffer.from([0x00])), /illegal tag/, 'field number 0');
  });

  it('refuses an array where a message belongs, and an unknown service, with typed errors', () => {
    const method = serviceDefinition('devicemesh.v1.Registry').RegisterEndpoint as grpc.MethodDefinition<object, object>;
    assert.throws(() => method.requestSerialize([] as unknown as object), { code: 'INVALID_ARGUMENT', message: /got array instead/ });
    assert.throws(() => serviceClient('devicemesh.v1.Nope'), { code: 'INTERNAL', message: 'no gRPC service devicemesh.v1.Nope' });
  });
});
