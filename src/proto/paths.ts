import * as fs from 'node:fs';
import * as path from 'node:path';

/** Root of devicemesh's own .proto files (proto/ at the top of the package). */
export const DEVICEMESH_PROTO_ROOT: string = path.resolve(__dirname, '..', '..', '..', 'proto');

/** Envoy's published protos and their dependencies, as shipped by @grpc/grpc-js-xds. */
export function envoyProtoRoots(): string[] {
  const pkg = path.dirname(require.resolve('@grpc/grpc-js-xds/package.json'));
  return ['envoy-api', 'xds', 'googleapis', 'protoc-gen-validate'].map((d) => path.join(pkg, 'deps', d));
}

/**
 * The .proto file that defines each gRPC service devicemesh serves or calls, relative to the include
 * roots: a process parses only the files of the services it uses (`get endpoints` only registry.proto).
 */
export const SERVICE_PROTO_FILES: Readonly<Record<string, string>> = {
  'devicemesh.v1.Registry': 'devicemesh/v1/registry.proto',
  'devicemesh.v1.Bindings': 'devicemesh/v1/bindings.proto',
  'devicemesh.v1.Status': 'devicemesh/v1/status.proto',
  'devicemesh.v1.DeviceSession': 'devicemesh/v1/device.proto',
  'devicemesh.v1.Identity': 'devicemesh/v1/identity.proto',
  'envoy.service.discovery.v3.AggregatedDiscoveryService': 'envoy/service/discovery/v3/ads.proto',
};

/** The .proto files the control plane serves, relative to the include roots. */
export const SERVED_PROTO_FILES: readonly string[] = Object.values(SERVICE_PROTO_FILES);

/**
 * The served files that can define `fullName` (a service, message or enum): those under the directory
 * of its first name part (devicemesh/… for devicemesh.v1.Mapping, envoy/… for Envoy's), or all of
 * them: the files parsed to find a message of an Any payload.
 */
export function protoFilesFor(fullName: string): readonly string[] {
  const top = `${fullName.split('.')[0]}/`;
  const files = SERVED_PROTO_FILES.filter((f) => f.startsWith(top));
  return files.length > 0 ? files : SERVED_PROTO_FILES;
}

export function includeDirs(): string[] {
  return [DEVICEMESH_PROTO_ROOT, ...envoyProtoRoots()];
}

/** protobufjs's own copy of google/protobuf/descriptor.proto and friends, which Envoy's options import. */
export function protobufjsProtoRoot(): string {
  return path.dirname(require.resolve('protobufjs/package.json'));
}

/** The first include root that holds `name` (an import path such as `google/rpc/status.proto`). */
export function resolveProtoFile(name: string, roots: readonly string[]): string | undefined {
  return roots.map((dir) => path.join(dir, name)).find((candidate) => fs.existsSync(candidate));
}
