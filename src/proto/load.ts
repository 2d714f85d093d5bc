import * as grpc from '@grpc/grpc-js';
import * as protobuf from 'protobufjs';
import { DeviceMeshError } from '../errors';
import { includeDirs, protoFilesFor, protobufjsProtoRoot, resolveProtoFile, SERVED_PROTO_FILES, SERVICE_PROTO_FILES } from './paths';

/** How every message becomes a JS object, on gRPC calls and in Any payloads alike. */
export const OBJECT_OPTIONS = {
  keepCase: false,
  longs: String,
  enums: String,
  defaults: true,
  oneofs: true,
} as const;

// One root that files are parsed into when first needed, and one constructor per service: parsing
// a .proto costs start-up time and heap that a process which never uses it need not spend.
let root: protobuf.Root | undefined;
const parsed = new Set<string>();
const clients = new Map<string, grpc.ServiceClientConstructor>();

/** The protobufjs root, holding at least `files` (by default every served one), for gRPC services and `google.protobuf.Any` payloads. */
export function protobufRoot(files: readonly string[] = SERVED_PROTO_FILES): protobuf.Root {
  if (!root) {
    const r = new protobuf.Root();
    const dirs = [...includeDirs(), protobufjsProtoRoot()];
    // Unresolved names fall through to protobufjs's bundled well-known types.
    r.resolvePath = (_origin: string, target: string): string => resolveProtoFile(target, dirs) ?? target;
    root = r;
  }
  const missing = files.filter((f) => !parsed.has(f));
  if (missing.length > 0) {
    // A file already parsed, as another's import, is skipped by protobufjs itself.
    root.loadSync(missing, { keepCase: false });
    root.resolveAll();
    for (const f of missing) parsed.add(f);
  }
  return root;
}

/** A message type by full name, from only the files that can define it. */
export function messageType(fullName: string): protobuf.Type {
  return protobufRoot(protoFilesFor(fullName)).lookupType(fullName);
}

function serializer(type: protobuf.Type): grpc.serialize<object> {
  return (value: object): Buffer => {
    if (Array.isArray(value)) throw new DeviceMeshError('INVALID_ARGUMENT', `Failed to serialize message: expected object with ${type.name} structure, got array instead`);
    // On Node protobufjs's writer finishes in a Buffer: no copy.
    return type.encode(type.fromObject(value)).finish() as Buffer;
  };
}

function deserializer(type: protobuf.Type): grpc.deserialize<object> {
  return (bytes: Buffer): object => type.toObject(type.decode(bytes), OBJECT_OPTIONS);
}

/**
 * A service's methods as @grpc/proto-loader defines them (path, streaming, the same object
 * conversion both ways, the lower-camel-case alias), straight from protobufjs: proto-loader would
 * also build every message's descriptor, which nothing here reads and which costs most of a CLI
 * command's start-up.
 */
function methodsOf(fullName: string): grpc.ServiceDefinition {
  let service: protobuf.Service;
  try {
    const file = Object.hasOwn(SERVICE_PROTO_FILES, fullName) ? SERVICE_PROTO_FILES[fullName] : undefined;
    service = protobufRoot(file === undefined ? [] : [file]).lookupService(fullName);
  } catch (err) {
    throw new DeviceMeshError('INTERNAL', `no gRPC service ${fullName}`, { cause: err });
  }
  const methods: Record<string, grpc.MethodDefinition<object, object>> = {};
  for (const method of service.methodsArray) {
    const request = method.resolvedRequestType as protobuf.Type;
    const response = method.resolvedResponseType as protobuf.Type;
    methods[method.name] = {
      path: `/${fullName}/${method.name}`,
      requestStream: method.requestStream === true,
      responseStream: method.responseStream === true,
      requestSerialize: serializer(request),
      requestDeserialize: deserializer(request),
      responseSerialize: serializer(response),
      responseDeserialize: deserializer(response),
      originalName: method.name.charAt(0).toLowerCase() + method.name.slice(1),
    };
  }
  return methods;
}

/** Looks up a service constructor, e.g. `devicemesh.v1.Registry`, parsing only the file that defines it (and its imports). */
export function serviceClient(fullName: string): grpc.ServiceClientConstructor {
  let client = clients.get(fullName);
  if (!client) {
    client = grpc.makeClientConstructor(methodsOf(fullName), fullName.slice(fullName.lastIndexOf('.') + 1));
    clients.set(fullName, client);
  }
  return client;
}

export function serviceDefinition(fullName: string): grpc.ServiceDefinition {
  return serviceClient(fullName).service;
}
