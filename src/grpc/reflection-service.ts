import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { DeviceMeshError, errorMessage } from '../errors';
import { SERVED_PROTO_FILES } from '../proto/paths';
import { buildFileDescriptors, FileDescriptorIndex, ServedFile } from './file-descriptors';

const REFLECTION_SERVICES = ['grpc.reflection.v1.ServerReflection', 'grpc.reflection.v1alpha.ServerReflection'] as const;
const REFLECTION_PROTO_FILES = ['grpc/reflection/v1/reflection.proto', 'grpc/reflection/v1alpha/reflection.proto'];

/** The reflection protos as shipped by @grpc/reflection, so that they are not copied into this repo. */
function reflectionProtoRoot(): string {
  return path.join(path.dirname(require.resolve('@grpc/reflection/package.json')), 'build', 'proto');
}

/** ServerReflectionRequest, as proto-loader decodes it with `keepCase` and `oneofs`. */
interface ReflectionRequest {
  host?: string;
  message_request?: string;
  file_by_filename?: string;
  file_containing_symbol?: string;
  file_containing_extension?: { containing_type?: string; extension_number?: number };
  all_extension_numbers_of_type?: string;
  list_services?: string;
}

interface ReflectionResponse {
  valid_host: string;
  original_request: ReflectionRequest;
  file_descriptor_response?: { file_descriptor_proto: Uint8Array[] };
  all_extension_numbers_response?: { base_type_name: string; extension_number: number[] };
  list_services_response?: { service: { name: string }[] };
  error_response?: { error_code: number; error_message: string };
}

let descriptors: FileDescriptorIndex | undefined;

/** Built on first use: parsing Envoy's protos takes a moment that a server not asked about them need not spend. */
function descriptorIndex(): FileDescriptorIndex {
  descriptors ??= buildFileDescriptors([...SERVED_PROTO_FILES, ...REFLECTION_PROTO_FILES], [reflectionProtoRoot()]);
  return descriptors;
}

/**
 * Adds grpc.reflection.v1 and v1alpha ServerReflection to `server`, listing `serviceNames` (fully
 * qualified) and the reflection services, and serving one complete FileDescriptorProto per .proto file.
 */
export function addReflectionService(server: grpc.Server, serviceNames: string[]): void {
  const listed = [...new Set([...serviceNames, ...REFLECTION_SERVICES])];
  const definitions = protoLoader.loadSync(REFLECTION_PROTO_FILES, {
    includeDirs: [reflectionProtoRoot()],
    keepCase: true,
    longs: String,
    enums: String,
    oneofs: true,
  });
  const implementation: grpc.UntypedServiceImplementation = {
    ServerReflectionInfo: (call: grpc.ServerDuplexStream<ReflectionRequest, ReflectionResponse>): void => serve(call, listed),
  };
  for (const name of REFLECTION_SERVICES) {
    const definition = definitions[name];
    if (!definition || 'format' in definition) throw new DeviceMeshError('INTERNAL', `${name} is not a service in ${REFLECTION_PROTO_FILES.join(', ')}`);
    server.addService(definition as grpc.ServiceDefinition, implementation);
  }
}

function serve(call: grpc.ServerDuplexStream<ReflectionRequest, ReflectionResponse>, services: readonly string[]): void {
  // Files already sent on this stream are not repeated as dependencies, as in grpc-go.
  const sent = new Set<string>();
  call.on('data', (request: ReflectionRequest) => call.write(answer(request, services, sent)));
  call.on('end', () => call.end());
  // A client that goes away mid-stream is no error of ours; without a listener it would crash the process.
  call.on('error', () => undefined);
}

function answer(request: ReflectionRequest, services: readonly string[], sent: Set<string>): ReflectionResponse {
  const response: ReflectionResponse = { valid_host: request.host ?? '', original_request: request };
  const fail = (code: grpc.status, message: string): ReflectionResponse => ({ ...response, error_response: { error_code: code, error_message: message } });
  const files = (file: ServedFile | undefined, what: string): ReflectionResponse => {
    if (!file) return fail(grpc.status.NOT_FOUND, `${what} not found`);
    const answered = descriptorIndex().withDependencies(file, sent);
    for (const f of answered) sent.add(f.name);
    return { ...response, file_descriptor_response: { file_descriptor_proto: answered.map((f) => f.descriptor) } };
  };
  try {
    switch (request.message_request) {
      case 'list_services':
        return { ...response, list_services_response: { service: services.map((name) => ({ name })) } };
      case 'file_by_filename': {
        const name = request.file_by_filename ?? '';
        return files(descriptorIndex().file(name), `file ${name}`);
      }
      case 'file_containing_symbol': {
        const symbol = request.file_containing_symbol ?? '';
        return files(descriptorIndex().fileContainingSymbol(symbol), `symbol ${symbol}`);
      }
      case 'file_containing_extension': {
        const type = request.file_containing_extension?.containing_type ?? '';
        const number = request.file_containing_extension?.extension_number ?? 0;
        return files(descriptorIndex().fileContainingExtension(type, number), `extension ${number} of ${type}`);
      }
      case 'all_extension_numbers_of_type': {
        const type = request.all_extension_numbers_of_type ?? '';
        const numbers = descriptorIndex().extensionNumbers(type);
        if (!numbers) return fail(grpc.status.NOT_FOUND, `message type ${type} not found`);
        return { ...response, all_extension_numbers_response: { base_type_name: type, extension_number: numbers } };
      }
      default:
        return fail(grpc.status.UNIMPLEMENTED, `reflection request ${request.message_request ?? '(empty)'} is not supported`);
    }
  } catch (err) {
    return fail(grpc.status.INTERNAL, errorMessage(err));
  }
}
