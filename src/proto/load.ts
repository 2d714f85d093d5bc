import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import * as protobuf from 'protobufjs';
import { includeDirs, protobufjsProtoRoot, resolveProtoFile, SERVED_PROTO_FILES } from './paths';

/** How every message becomes a JS object, on gRPC calls and in Any payloads alike. */
export const OBJECT_OPTIONS = {
  keepCase: false,
  longs: String,
  enums: String,
  defaults: true,
  oneofs: true,
} as const;

let packageDefinition: protoLoader.PackageDefinition | undefined;
let grpcObject: grpc.GrpcObject | undefined;
let root: protobuf.Root | undefined;

export function loadPackageDefinition(): protoLoader.PackageDefinition {
  packageDefinition ??= protoLoader.loadSync([...SERVED_PROTO_FILES], { ...OBJECT_OPTIONS, includeDirs: includeDirs() });
  return packageDefinition;
}

export function loadGrpcObject(): grpc.GrpcObject {
  grpcObject ??= grpc.loadPackageDefinition(loadPackageDefinition());
  return grpcObject;
}

/** Looks up a service constructor, e.g. `devicemesh.v1.Registry`. */
export function serviceClient(fullName: string): grpc.ServiceClientConstructor {
  let node: unknown = loadGrpcObject();
  for (const part of fullName.split('.')) node = (node as Record<string, unknown>)[part];
  if (typeof node !== 'function' || !('service' in node)) throw new Error(`no gRPC service ${fullName}`);
  return node as grpc.ServiceClientConstructor;
}

export function serviceDefinition(fullName: string): grpc.ServiceDefinition {
  return serviceClient(fullName).service;
}

/** A protobufjs root over the same files, for encoding and decoding `google.protobuf.Any` payloads. */
export function protobufRoot(): protobuf.Root {
  if (!root) {
    const r = new protobuf.Root();
    const dirs = [...includeDirs(), protobufjsProtoRoot()];
    // Unresolved names fall through to protobufjs's bundled well-known types.
    r.resolvePath = (_origin: string, target: string): string => resolveProtoFile(target, dirs) ?? target;
    r.loadSync([...SERVED_PROTO_FILES], { keepCase: false });
    r.resolveAll();
    root = r;
  }
  return root;
}

export function messageType(fullName: string): protobuf.Type {
  return protobufRoot().lookupType(fullName);
}
