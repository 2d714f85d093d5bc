import { strict as assert } from 'node:assert';
import * as fc from 'fast-check';
import { ProtocolError } from '../../src/errors';
import { serviceDefinition } from '../../src/proto/load';
import { packAny, unpackAny } from '../../src/xds/any';
import { MAPPING_TYPE_URL } from '../../src/xds/type-urls';
import { CASE_TIME_LIMIT_MS, decodesOrRefuses, fuzzParameters, suiteTimeoutMs } from './fuzz-budget';

const ADS = 'envoy.service.discovery.v3.AggregatedDiscoveryService';

interface Codec {
  serialize(value: object): Buffer;
  deserialize(bytes: Buffer): unknown;
}

/** The (de)serializers grpc-js calls on the control plane's and the proxies' ends of the stream. */
function codecs(): Record<string, Codec> {
  const ads = serviceDefinition(ADS);
  const sotw = ads.StreamAggregatedResources as unknown as { requestSerialize(v: object): Buffer; requestDeserialize(b: Buffer): unknown };
  const delta = ads.DeltaAggregatedResources as unknown as {
    requestSerialize(v: object): Buffer;
    requestDeserialize(b: Buffer): unknown;
    responseSerialize(v: object): Buffer;
    responseDeserialize(b: Buffer): unknown;
  };
  return {
    DiscoveryRequest: { serialize: (v) => sotw.requestSerialize(v), deserialize: (b) => sotw.requestDeserialize(b) },
    DeltaDiscoveryRequest: { serialize: (v) => delta.requestSerialize(v), deserialize: (b) => delta.requestDeserialize(b) },
    DeltaDiscoveryResponse: { serialize: (v) => delta.responseSerialize(v), deserialize: (b) => delta.responseDeserialize(b) },
  };
}

/** Valid messages, then bytes flipped, cut or appended: the inputs that reach deep into the decoder. */
function mutated(valid: Buffer): fc.Arbitrary<Buffer> {
  return fc
    .array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 6 })
    .chain((flips) =>
      fc.tuple(fc.constant(flips), fc.nat({ max: valid.length }), fc.uint8Array({ maxLength: 16 })).map(([f, keep, tail]) => {
        const bytes = Buffer.from(valid);
        for (const [at, value] of f) if (bytes.length > 0) bytes[at % bytes.length] = value;
        return Buffer.concat([bytes.subarray(0, keep), Buffer.from(tail)]);
      }),
    );
}

/**
 * grpc-js answers a request that does not deserialize with status INTERNAL and keeps serving;
 * what must hold is that decoding returns or throws an Error, quickly, for any bytes.
 */
function decodesOrThrowsError(decode: () => unknown): void {
  const started = Date.now();
  try {
    decode();
  } catch (err) {
    assert.ok(err instanceof Error, `threw a non-Error ${String(err)}`);
    assert.ok(err.message.length > 0);
  }
  assert.ok(Date.now() - started < CASE_TIME_LIMIT_MS);
}

describe('fuzz: discovery messages', function () {
  this.timeout(suiteTimeoutMs());
  const all = codecs();
  const mappingAny = packAny(MAPPING_TYPE_URL, { id: 'm1', workloadId: 'app1', devicePath: '/dev/ttyUSB0', hostId: 'gw1', agentAddress: '10.0.0.1:7000' });
  const samples: Record<string, object> = {
    DiscoveryRequest: { versionInfo: '3', node: { id: 'sidecar~app1' }, resourceNames: ['m1'], typeUrl: MAPPING_TYPE_URL, responseNonce: '2' },
    DeltaDiscoveryRequest: {
      node: { id: 'agent~gw1', metadata: { fields: { host: { stringValue: 'gw1' } } } },
      typeUrl: MAPPING_TYPE_URL,
      resourceNamesSubscribe: ['*'],
      initialResourceVersions: { m1: '1' },
      responseNonce: 'n1',
      errorDetail: { code: 3, message: 'nack' },
    },
    DeltaDiscoveryResponse: { systemVersionInfo: '1', typeUrl: MAPPING_TYPE_URL, nonce: 'n1', resources: [{ name: 'm1', version: '1', resource: mappingAny }] },
  };

  for (const [name, codec] of Object.entries(all)) {
    it(`${name}: any bytes, and mutations of a valid one, decode or fail with an Error, never hang`, () => {
      const valid = codec.serialize(samples[name] as object);
      assert.ok(valid.length > 10);
      fc.assert(
        fc.property(fc.oneof(fc.uint8Array({ maxLength: 512 }).map((b) => Buffer.from(b)), mutated(valid)), (bytes) => {
          decodesOrThrowsError(() => codec.deserialize(bytes));
        }),
        fuzzParameters(),
      );
    });
  }

  it('our Any resources (Mapping): any payload or type URL unpacks or is a ProtocolError', () => {
    const valid = mappingAny.value;
    fc.assert(
      fc.property(
        fc.oneof(fc.uint8Array({ maxLength: 512 }).map((b) => Buffer.from(b)), mutated(valid)),
        fc.oneof(fc.constant(MAPPING_TYPE_URL), fc.string({ maxLength: 60 })),
        (value, typeUrl) => {
          const m = decodesOrRefuses(() => unpackAny({ type_url: typeUrl, value }, MAPPING_TYPE_URL), [ProtocolError]).value;
          if (m) assert.equal(typeof m.id, 'string');
        },
      ),
      fuzzParameters(),
    );
  });
});
