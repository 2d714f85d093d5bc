import * as assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import * as path from 'node:path';
import { promisify } from 'node:util';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import * as descriptor from 'protobufjs/ext/descriptor';
import { addReflectionService } from '../../src/grpc/reflection-service';
import { serviceDefinition } from '../../src/proto/load';
import { PYTHON, STRICT_CLIENT, strictClientMissing } from '../helpers/strict-reflection';

const execFileAsync = promisify(execFile);

// The strict client compiles its reflection stubs from Debian's grpc-proto.

const SERVICES = [
  'devicemesh.v1.Registry',
  'devicemesh.v1.Bindings',
  'devicemesh.v1.Status',
  'envoy.service.discovery.v3.AggregatedDiscoveryService',
];

const ENDPOINT = {
  id: 'gw1/usb-0403:6001:A1',
  hostId: 'gw1',
  deviceId: 'usb-0403:6001:A1',
  kind: 'DEVICE_KIND_SERIAL',
  path: '/dev/ttyUSB0',
  capabilities: ['serial'],
  state: 'ENDPOINT_STATE_PRESENT',
  labels: { bench: 'b2' },
  updatedAt: { seconds: '1700000000', nanos: 0 },
};

interface ClientRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** Why the strict client cannot run here, or undefined when it can. */
interface ReflectionRequest {
  file_by_filename?: string;
  file_containing_symbol?: string;
  file_containing_extension?: { containing_type: string; extension_number: number };
  all_extension_numbers_of_type?: string;
  list_services?: string;
}

interface ReflectionResponse {
  message_response?: string;
  file_descriptor_response?: { file_descriptor_proto: Buffer[] };
  all_extension_numbers_response?: { base_type_name: string; extension_number: number[] };
  list_services_response?: { service: { name: string }[] };
  error_response?: { error_code: number; error_message: string };
}

type ReflectionClient = grpc.Client & { ServerReflectionInfo(): grpc.ClientDuplexStream<ReflectionRequest, ReflectionResponse> };

/** A grpc-js reflection client over the protos @grpc/reflection ships, independent of the server code. */
function reflectionClient(version: 'v1' | 'v1alpha', address: string): ReflectionClient {
  const root = path.join(path.dirname(require.resolve('@grpc/reflection/package.json')), 'build', 'proto');
  const definition = protoLoader.loadSync(`grpc/reflection/${version}/reflection.proto`, { includeDirs: [root], keepCase: true, oneofs: true });
  const Client = grpc.makeClientConstructor(definition[`grpc.reflection.${version}.ServerReflection`] as grpc.ServiceDefinition, 'ServerReflection');
  return new Client(address, grpc.credentials.createInsecure()) as unknown as ReflectionClient;
}

/** Sends all requests on one stream and collects the answers. */
function exchange(client: ReflectionClient, requests: ReflectionRequest[]): Promise<ReflectionResponse[]> {
  return new Promise((resolve, reject) => {
    const responses: ReflectionResponse[] = [];
    const call = client.ServerReflectionInfo();
    call.on('data', (r: ReflectionResponse) => responses.push(r));
    call.on('error', reject);
    call.on('end', () => resolve(responses));
    for (const request of requests) call.write(request);
    call.end();
  });
}

function fileNames(response: ReflectionResponse): string[] {
  return (response.file_descriptor_response?.file_descriptor_proto ?? []).map((bytes) =>
    String(descriptor.FileDescriptorProto.toObject(descriptor.FileDescriptorProto.decode(bytes)).name),
  );
}

describe('gRPC reflection service', function () {
  let server: grpc.Server;
  let address: string;

  before(async function () {
    server = new grpc.Server();
    server.addService(serviceDefinition('devicemesh.v1.Registry'), {
      ListEndpoints: (_call: grpc.ServerUnaryCall<unknown, unknown>, callback: grpc.sendUnaryData<unknown>): void =>
        callback(null, { endpoints: [ENDPOINT], hosts: [] }),
    });
    // The other services answer UNIMPLEMENTED; reflection only needs them listed.
    for (const name of SERVICES.slice(1)) server.addService(serviceDefinition(name), {});
    addReflectionService(server, SERVICES);
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
    );
    address = `127.0.0.1:${port}`;
  });

  after(function () {
    server.forceShutdown();
  });

  describe('with the strict Python client', function () {
    before(async function () {
      const missing = strictClientMissing();
      if (missing) {
        console.log(`    skipping the strict reflection client tests: ${missing}`);
        this.skip();
      }
    });

    /** Runs the Python client without blocking this process, which must keep serving meanwhile. */
    async function strict(...args: string[]): Promise<ClientRun> {
      try {
        const { stdout, stderr } = await execFileAsync(PYTHON, [STRICT_CLIENT, address, ...args], { timeout: 45_000 });
        return { code: 0, stdout, stderr };
      } catch (err) {
        const failed = err as { code?: unknown; stdout?: string; stderr?: string };
        if (typeof failed.code !== 'number') throw err;
        return { code: failed.code, stdout: failed.stdout ?? '', stderr: failed.stderr ?? '' };
      }
    }

    async function strictOk(...args: string[]): Promise<string> {
      const run = await strict(...args);
      assert.equal(run.code, 0, `strict client ${args.join(' ')} failed: ${run.stderr}`);
      return run.stdout;
    }

    it('lists the four control-plane services and the reflection services', async function () {
      const listed = (await strictOk('list')).trim().split('\n');
      assert.deepEqual(listed, [...SERVICES, 'grpc.reflection.v1.ServerReflection', 'grpc.reflection.v1alpha.ServerReflection'].sort());
    });

    for (const service of SERVICES) {
      it(`describes ${service} with every file resolved through declared dependencies`, async function () {
        const described = JSON.parse(await strictOk('describe', service)) as {
          service: string;
          file: string;
          methods: { name: string; client_streaming: boolean; server_streaming: boolean }[];
        };
        assert.equal(described.service, service);
        assert.ok(described.methods.length > 0);
        if (service === 'devicemesh.v1.Registry') {
          assert.equal(described.file, 'devicemesh/v1/registry.proto');
          assert.equal(described.methods.find((m) => m.name === 'WatchEndpoints')?.server_streaming, true);
        }
        if (service === 'envoy.service.discovery.v3.AggregatedDiscoveryService') {
          assert.equal(described.file, 'envoy/service/discovery/v3/ads.proto');
          const stream = described.methods.find((m) => m.name === 'StreamAggregatedResources');
          assert.deepEqual([stream?.client_streaming, stream?.server_streaming], [true, true]);
        }
      });
    }

    it('calls Registry/ListEndpoints with messages built from the reflected descriptors', async function () {
      const output = JSON.parse(await strictOk('call', 'devicemesh.v1.Registry/ListEndpoints', '{}')) as { endpoints: Record<string, unknown>[] };
      assert.equal(output.endpoints.length, 1);
      assert.deepEqual(output.endpoints[0], {
        id: ENDPOINT.id,
        hostId: 'gw1',
        deviceId: ENDPOINT.deviceId,
        kind: 'DEVICE_KIND_SERIAL',
        path: '/dev/ttyUSB0',
        capabilities: ['serial'],
        state: 'ENDPOINT_STATE_PRESENT',
        labels: { bench: 'b2' },
        updatedAt: '2023-11-14T22:13:20Z',
      });
    });

    it('answers an unknown symbol with NOT_FOUND and keeps serving', async function () {
      const run = await strict('describe', 'devicemesh.v1.NoSuchService');
      assert.equal(run.code, 1);
      assert.match(run.stderr, /reflection error 5: .*devicemesh\.v1\.NoSuchService/);
      assert.ok((await strictOk('list')).includes('devicemesh.v1.Registry'));
    });
  });

  describe('with a grpc-js client', function () {
    it("pulls in Envoy's imports for the discovery service", async function () {
      const client = reflectionClient('v1alpha', address);
      try {
        const [response] = await exchange(client, [{ file_containing_symbol: 'envoy.service.discovery.v3.AggregatedDiscoveryService' }]);
        const names = fileNames(response);
        assert.equal(names[0], 'envoy/service/discovery/v3/ads.proto');
        for (const name of ['envoy/config/core/v3/base.proto', 'google/rpc/status.proto', 'google/protobuf/any.proto', 'validate/validate.proto']) {
          assert.ok(names.includes(name), `${name} not sent`);
        }
      } finally {
        client.close();
      }
    });

    for (const version of ['v1', 'v1alpha'] as const) {
      it(`answers bad requests on grpc.reflection.${version} with error_response, on the same stream as good ones`, async function () {
        const client = reflectionClient(version, address);
        try {
          const responses = await exchange(client, [
            { file_containing_symbol: 'no.such.Symbol' },
            { file_by_filename: 'no/such/file.proto' },
            {},
            { file_containing_extension: { containing_type: 'google.protobuf.FieldOptions', extension_number: 1 } },
            { all_extension_numbers_of_type: 'no.such.Type' },
            { file_by_filename: 'devicemesh/v1/registry.proto' },
            { file_containing_symbol: 'devicemesh.v1.PhysicalEndpoint.labels' },
            { file_containing_extension: { containing_type: 'google.protobuf.FieldOptions', extension_number: 1071 } },
            { all_extension_numbers_of_type: 'google.protobuf.FieldOptions' },
            { list_services: '' },
          ]);
          assert.equal(responses.length, 10);
          const errors = responses.slice(0, 5).map((r) => r.error_response?.error_code);
          assert.deepEqual(errors, [grpc.status.NOT_FOUND, grpc.status.NOT_FOUND, grpc.status.UNIMPLEMENTED, grpc.status.NOT_FOUND, grpc.status.NOT_FOUND]);
          assert.deepEqual(fileNames(responses[5]), [
            'devicemesh/v1/registry.proto',
            'google/protobuf/empty.proto',
            'devicemesh/v1/endpoint.proto',
            'google/protobuf/timestamp.proto',
          ]);
          // Already sent on this stream, so only the requested file comes back.
          assert.deepEqual(fileNames(responses[6]), ['devicemesh/v1/endpoint.proto']);
          assert.equal(fileNames(responses[7])[0], 'validate/validate.proto');
          assert.ok(responses[8].all_extension_numbers_response?.extension_number.includes(1071));
          assert.equal(responses[8].all_extension_numbers_response?.base_type_name, 'google.protobuf.FieldOptions');
          assert.equal(responses[9].list_services_response?.service.length, SERVICES.length + 2);
        } finally {
          client.close();
        }
      });
    }
  });
});
