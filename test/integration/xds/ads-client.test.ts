import * as assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { serviceDefinition } from '../../../src/proto/load';
import type { DiscoveryRequest, DiscoveryResponse, Mapping } from '../../../src/proto/types';
import { packAny } from '../../../src/xds/any';
import { AdsClient } from '../../../src/xds/ads-client';
import type { DeltaDiscoveryRequest, DeltaDiscoveryResponse, XdsResource } from '../../../src/xds/delta-messages';
import { MAPPING_TYPE_URL } from '../../../src/xds/type-urls';
import { silentLog } from '../../unit/control-plane/fixtures';
import { bareMapping, sleep, waitFor } from './harness';

type DeltaServerCall = grpc.ServerDuplexStream<DeltaDiscoveryRequest, DeltaDiscoveryResponse>;
type SotwServerCall = grpc.ServerDuplexStream<DiscoveryRequest, DiscoveryResponse>;

/** A scripted discovery server: records every request; the test writes the responses. */
class ScriptedServer {
  readonly delta: { call: DeltaServerCall; requests: DeltaDiscoveryRequest[] }[] = [];
  readonly sotw: { call: SotwServerCall; requests: DiscoveryRequest[] }[] = [];

  private constructor(
    private readonly server: grpc.Server,
    readonly address: string,
  ) {}

  /** `delta`: serve it, close it without a word, or leave it unimplemented. */
  static async start(delta: 'serve' | 'close' | 'unimplemented'): Promise<ScriptedServer> {
    const server = new grpc.Server();
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
    );
    const s = new ScriptedServer(server, `127.0.0.1:${port}`);
    const impl: grpc.UntypedServiceImplementation = {
      StreamAggregatedResources: (call: SotwServerCall) => {
        const entry = { call, requests: [] as DiscoveryRequest[] };
        s.sotw.push(entry);
        call.on('data', (r: DiscoveryRequest) => entry.requests.push(r));
        call.on('error', () => undefined);
      },
    };
    if (delta !== 'unimplemented') {
      impl.DeltaAggregatedResources = (call: DeltaServerCall) => {
        if (delta === 'close') {
          call.end();
          return;
        }
        const entry = { call, requests: [] as DeltaDiscoveryRequest[] };
        s.delta.push(entry);
        call.on('data', (r: DeltaDiscoveryRequest) => entry.requests.push(r));
        call.on('error', () => undefined);
        call.sendMetadata(new grpc.Metadata());
      };
    }
    server.addService(serviceDefinition('envoy.service.discovery.v3.AggregatedDiscoveryService'), impl);
    return s;
  }

  stop(): void {
    this.server.forceShutdown();
  }
}

function resource(m: Mapping, version: string): XdsResource {
  return { name: m.id, version, resource: packAny(MAPPING_TYPE_URL, m) };
}

function deltaResponse(nonce: string, resources: XdsResource[], removedResources: string[] = []): DeltaDiscoveryResponse {
  return { systemVersionInfo: `v${nonce}`, resources, typeUrl: MAPPING_TYPE_URL, removedResources, nonce };
}

describe('the discovery client (AdsClient)', () => {
  const cleanups: (() => void)[] = [];
  afterEach(() => {
    for (const c of cleanups.splice(0)) c();
  });

  function client(address: string, reject?: (ids: string[]) => string | undefined): { ads: AdsClient; sets: string[][]; events: string[] } {
    const sets: string[][] = [];
    const events: string[] = [];
    const ads = new AdsClient({
      address,
      identity: { id: 'app1', kind: 'sidecar' },
      log: silentLog,
      handlers: {
        [MAPPING_TYPE_URL]: (resources) => {
          const ids = (resources as Mapping[]).map((m) => `${m.id}@${m.devicePath}`);
          sets.push(ids);
          const why = reject?.(ids);
          if (why) throw new Error(why);
        },
      },
    });
    for (const e of ['connected', 'disconnected', 'applied', 'rejected']) {
      ads.on(e, (...args: unknown[]) => events.push(e === 'applied' || e === 'rejected' ? `${e} ${String(args[0])}` : e));
    }
    ads.start();
    cleanups.push(() => ads.stop());
    return { ads, sets, events };
  }

  it('speaks incremental xDS: a full set to the handler, ACK and NACK by nonce, the last good set kept and declared on reconnect', async () => {
    const server = await ScriptedServer.start('serve');
    cleanups.push(() => server.stop());
    const { ads, sets, events } = client(server.address, (ids) => (ids.some((i) => i.startsWith('bad')) ? 'bad mapping' : undefined));
    const s = await waitFor('delta stream', () => server.delta[0]);
    const subscribe = await waitFor('subscription', () => s.requests[0]);
    assert.equal(subscribe.node?.id, 'app1');
    assert.equal(subscribe.node?.metadata?.fields.kind?.stringValue, 'sidecar');
    assert.deepEqual([subscribe.typeUrl, subscribe.resourceNamesSubscribe, subscribe.initialResourceVersions], [MAPPING_TYPE_URL, ['*'], {}]);
    await waitFor('connected on headers alone', () => (events.includes('connected') ? true : undefined));

    const a = bareMapping('a', '/dev/a');
    const b = bareMapping('b', '/dev/b');
    s.call.write(deltaResponse('1', [resource(b, 'b1'), resource(a, 'a1')]));
    const ack1 = await waitFor('ACK 1', () => s.requests[1]);
    assert.deepEqual([ack1.responseNonce, ack1.errorDetail, ack1.node], ['1', null, null]);
    assert.deepEqual(sets, [['a@/dev/a', 'b@/dev/b']], 'the whole set, in name order');

    s.call.write(deltaResponse('2', [resource({ ...b, devicePath: '/dev/b2' }, 'b2')], ['a']));
    await waitFor('ACK 2', () => s.requests[2]);
    assert.deepEqual(sets[1], ['b@/dev/b2']);
    assert.deepEqual(ads.versions(), { [MAPPING_TYPE_URL]: 'v2' });

    // Rejected by the handler: NACK; the set stays as it was.
    s.call.write(deltaResponse('3', [resource(bareMapping('bad', '/dev/x'), 'x1')]));
    const nack = await waitFor('NACK', () => s.requests[3]);
    assert.equal(nack.responseNonce, '3');
    assert.match(nack.errorDetail?.message ?? '', /bad mapping/);
    // Undecodable: NACK without calling the handler.
    s.call.write(deltaResponse('4', [{ name: 'junk', version: '1', resource: { type_url: 'type.googleapis.com/other.Type', value: Buffer.from([1]) } }]));
    const nack2 = await waitFor('NACK 2', () => s.requests[4]);
    assert.match(nack2.errorDetail?.message ?? '', /other\.Type/);
    assert.equal(sets.length, 3);
    assert.deepEqual(ads.versions(), { [MAPPING_TYPE_URL]: 'v2' });
    assert.ok(events.includes('rejected ' + MAPPING_TYPE_URL));

    // The next response applies over the last good set, not over the rejected one.
    s.call.write(deltaResponse('5', [resource(bareMapping('c', '/dev/c'), 'c1')]));
    await waitFor('ACK 5', () => s.requests[5]);
    assert.deepEqual(sets[3], ['b@/dev/b2', 'c@/dev/c']);

    // Reconnect: the node again, and what it holds.
    s.call.emit('error', Object.assign(new Error('bye'), { code: grpc.status.UNAVAILABLE, details: 'bye' }));
    const again = await waitFor('second stream', () => server.delta[1], 10_000);
    const resubscribe = await waitFor('resubscription', () => again.requests[0]);
    assert.equal(resubscribe.node?.id, 'app1');
    assert.deepEqual(resubscribe.initialResourceVersions, { b: 'b2', c: 'c1' });
    assert.ok(events.includes('disconnected'));
    assert.equal(ads.protocolInUse(), 'delta');
  });

  for (const how of ['unimplemented', 'close'] as const) {
    it(`falls back to the state of the world when the control plane ${how === 'close' ? 'closes the incremental stream without a word' : 'does not implement it'}`, async () => {
      const server = await ScriptedServer.start(how);
      cleanups.push(() => server.stop());
      const { ads, sets, events } = client(server.address);
      const s = await waitFor('state-of-the-world stream', () => server.sotw[0]);
      const subscribe = await waitFor('subscription', () => s.requests[0]);
      assert.deepEqual([subscribe.node?.id, subscribe.typeUrl, subscribe.versionInfo], ['app1', MAPPING_TYPE_URL, '']);
      s.call.write({ versionInfo: '7', resources: [packAny(MAPPING_TYPE_URL, bareMapping('a', '/dev/a'))], typeUrl: MAPPING_TYPE_URL, nonce: 'n1' });
      const ack = await waitFor('ACK', () => s.requests[1]);
      assert.deepEqual([ack.versionInfo, ack.responseNonce, ack.errorDetail], ['7', 'n1', null]);
      assert.deepEqual(sets, [['a@/dev/a']]);
      assert.equal(ads.protocolInUse(), 'sotw');
      await sleep(100);
      assert.deepEqual(events, ['connected', `applied ${MAPPING_TYPE_URL}`], 'the fallback is not a disconnection');
    });
  }
});
