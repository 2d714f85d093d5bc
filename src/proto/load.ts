import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
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

// One of each per file (or set of files), built on first use: parsing a .proto costs start-up time and heap.
const grpcObjects = new Map<string, grpc.GrpcObject>();
const roots = new Map<string, protobuf.Root>();

function grpcObject(file: string): grpc.GrpcObject {
  let object = grpcObjects.get(file);
  if (!object) {
    object = grpc.loadPackageDefinition(protoLoader.loadSync(file, { ...OBJECT_OPTIONS, includeDirs: includeDirs() }));
    grpcObjects.set(file, object);
  }
  return object;
}

/** Looks up a service constructor, e.g. `devicemesh.v1.Registry`, loading only the file that defines it. */
export function serviceClient(fullName: string): grpc.ServiceClientConstructor {
  const file = Object.hasOwn(SERVICE_PROTO_FILES, fullName) ? SERVICE_PROTO_FILES[fullName] : undefined;
  let node: unknown = file === undefined ? undefined : grpcObject(file);
  for (const part of fullName.split('.')) node = (node as Record<string, unknown> | undefined)?.[part];
  if (typeof node !== 'function' || !('service' in node)) throw new DeviceMeshError('INTERNAL', `no gRPC service ${fullName}`);
  return node as grpc.ServiceClientConstructor;
}

export function serviceDefinition(fullName: string): grpc.ServiceDefinition {
  return serviceClient(fullName).service;
}

/** A protobufjs root over `files` (by default every served one), for encoding and decoding `google.protobuf.Any` payloads. */
export function protobufRoot(files: readonly string[] = SERVED_PROTO_FILES): protobuf.Root {
  const key = files.join('\n');
  let root = roots.get(key);
  if (!root) {
    const r = new protobuf.Root();
    const dirs = [...includeDirs(), protobufjsProtoRoot()];
    // Unresolved names fall through to protobufjs's bundled well-known types.
    r.resolvePath = (_origin: string, target: string): string => resolveProtoFile(target, dirs) ?? target;
    r.loadSync([...files], { keepCase: false });
    r.resolveAll();
    roots.set(key, r);
    root = r;
  }
  return root;
}

/** A message type by full name, from only the files that can define it. */
export function messageType(fullName: string): protobuf.Type {
  return protobufRoot(protoFilesFor(fullName)).lookupType(fullName);
}
