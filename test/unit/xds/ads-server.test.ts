import * as assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import * as grpc from '@grpc/grpc-js';
import { AdsServer } from '../../../control-plane/ads-server';
import { generateMappings } from '../../helpers/generate-mappings';
import { ProxyStatusTracker } from '../../../control-plane/proxy-status';
import { SnapshotCache } from '../../../control-plane/snapshot-cache';
import type { Mapping, Timestamp } from '../../../src/proto/types';
import { Stats } from '../../../src/telemetry/stats';
import { deltaRequest } from '../../helpers/xds-requests';
import type { DeltaDiscoveryRequest, DeltaDiscoveryResponse } from '../../../src/xds/delta-messages';
import { binding, endpoint, host, policy, silentLog } from '../control-plane/fixtures';

/** Just enough of a grpc-js server stream for the ADS server; it ACKs every response when `autoAck` is set. */
class FakeCall extends EventEmitter {
  readonly written: DeltaDiscoveryResponse[] = [];
  autoAck = true;
  /** The client certificate's serial; '' for plaintext. */
  serial = '';
  /** The status the server ended the stream with. */
  status: { code: number; details: string } | undefined;

  constructor() {
    super();
    this.on('error', (err: { code: number; details: string }) => (this.status = { code: err.code, details: err.details }));
  }

  getPeer(): string {
    return 'fake:1';
  }

  getAuthContext(): ReturnType<grpc.ServerDuplexStream<unknown, unknown>['getAuthContext']> {
    if (!this.serial) return {};
    return { sslPeerCertificate: { serialNumber: this.serial } as unknown as NonNullable<ReturnType<grpc.ServerDuplexStream<unknown, unknown>['getAuthContext']>['sslPeerCertificate']> };
  }

  sendMetadata(): void {
    // Headers are of no interest here.
  }

  write(response: DeltaDiscoveryResponse, done?: () => void): boolean {
    this.written.push(response);
    this.emit('written');
    done?.();
    if (this.autoAck) setImmediate(() => this.request({ responseNonce: response.nonce }));
    return true;
  }

  end(): void {
    this.emit('finish');
  }

  request(overrides: Partial<DeltaDiscoveryRequest>): void {
    this.emit('data', deltaRequest(overrides));
  }
}

function mappings(depth: number, version: string, previous: Mapping[] = []): Mapping[] {
  return generateMappings({
    bindings: [binding('m1', { policy: policy('', { queueDepth: depth }) })],
    policies: [],
    endpoints: [endpoint('gw1', '/dev/ttyUSB0')],
    hosts: [host('gw1')],
    version,
    previous,
  }).mappings;
}

describe('ADS server push scheduling', () => {
  let cache: SnapshotCache;
  let server: AdsServer;
  let version = 1;
  let table: Mapping[];

  function start(options: { debounceMs?: number; maxIntervalMs?: number; batchSize?: number }): void {
    cache = new SnapshotCache();
    version = 1;
    table = mappings(1, '1');
    cache.update(table, '1', new Set(['binding']));
    const hosts = { hostConnected: async (): Promise<Timestamp> => ({ seconds: '0', nanos: 0 }), hostDisconnected: async (): Promise<void> => undefined };
    server = new AdsServer({ cache, proxies: new ProxyStatusTracker(), hosts, stats: new Stats(), log: silentLog, ...options });
  }

  /** Commits a new queue depth, as the control plane's commit listener does. */
  function change(depth: number): void {
    version += 1;
    table = mappings(depth, String(version), table);
    server.notify(cache.update(table, String(version), new Set(['binding'])));
  }

  async function connect(count: number): Promise<FakeCall[]> {
    const calls = Array.from({ length: count }, () => new FakeCall());
    const serve = server.implementation().DeltaAggregatedResources as (call: grpc.ServerDuplexStream<unknown, unknown>) => void;
    for (const call of calls) {
      serve(call as unknown as grpc.ServerDuplexStream<unknown, unknown>);
      call.request({ node: { id: 'app1', cluster: '', metadata: { fields: { kind: { stringValue: 'sidecar' } } } } });
    }
    const deadline = Date.now() + 5000;
    while (!calls.every((c) => c.written.length === 1)) {
      assert.ok(Date.now() < deadline, 'every stream answered');
      await new Promise((r) => setTimeout(r, 5));
    }
    return calls;
  }

  afterEach(() => server.close());

  it('tells streams of a change in batches, letting the event loop turn between them', async () => {
    start({ debounceMs: 0, batchSize: 100 });
    const calls = await connect(1000);
    await new Promise((r) => setTimeout(r, 20));
    for (const call of calls) call.autoAck = false;
    const pushed = (): number => calls.filter((c) => c.written.length === 2).length;
    let atFirstTurn = -1;
    // Queued as the first push is written: it runs as soon as the server lets the loop turn.
    calls[0]?.once('written', () => setImmediate(() => (atFirstTurn = pushed())));
    change(2);
    const deadline = Date.now() + 5000;
    while (pushed() < 1000) {
      assert.ok(Date.now() < deadline, `only ${pushed()} of 1000 pushed`);
      await new Promise((r) => setImmediate(r));
    }
    assert.ok(atFirstTurn >= 100 && atFirstTurn < 1000, `${atFirstTurn} pushed before other work ran`);
    for (const call of calls) assert.equal(call.written[1]?.resources.length, 1);
  });

  it('gathers a burst into one push, paces steady churn with growing intervals, and is quick again after a calm', async () => {
    start({ debounceMs: 10, maxIntervalMs: 120 });
    const [call] = await connect(1);
    const c = call as FakeCall;
    for (let depth = 2; depth < 12; depth++) change(depth);
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(c.written.length, 2, 'ten changes in one turn: one push');

    // A change every 15 ms for 900 ms (60 changes) — never calm for a whole interval.
    const started = Date.now();
    let depth = 100;
    while (Date.now() - started < 900) {
      change(depth++);
      await new Promise((r) => setTimeout(r, 15));
    }
    await new Promise((r) => setTimeout(r, 300));
    const churn = c.written.length - 2;
    assert.ok(churn >= 4 && churn <= 15, `${churn} pushes for ${depth - 100} changes in 900 ms`);
    assert.equal(c.written[c.written.length - 1]?.systemVersionInfo, String(version), 'the latest state went out');

    // Calm for longer than an interval: the next change goes out after debounceMs again.
    const before = c.written.length;
    const at = Date.now();
    change(1);
    while (c.written.length === before) await new Promise((r) => setTimeout(r, 1));
    assert.ok(Date.now() - at < 60, `pushed after ${Date.now() - at} ms`);
  });
});

describe('ADS server: one agent per host', () => {
  const connected: string[] = [];
  const disconnected: string[] = [];
  let server: AdsServer;
  let at = 0;

  beforeEach(() => {
    connected.length = 0;
    disconnected.length = 0;
    const hosts = {
      hostConnected: async (id: string, address: string): Promise<Timestamp> => {
        connected.push(`${id} ${address}`);
        return { seconds: String(++at), nanos: 0 };
      },
      hostDisconnected: async (id: string, connectedAt: Timestamp): Promise<void> => void disconnected.push(`${id} @${connectedAt.seconds}`),
    };
    const cache = new SnapshotCache();
    cache.update([], '1', new Set(['binding']));
    // Lineage: a serial's first letter (one join and its renewals).
    server = new AdsServer({ cache, proxies: new ProxyStatusTracker(), hosts, stats: new Stats(), log: silentLog, sameMember: (a, b) => a[0] === b[0] });
  });
  afterEach(() => server.close());

  const agent = async (serial: string, socketPlane: string): Promise<FakeCall> => {
    const call = new FakeCall();
    call.serial = serial;
    (server.implementation().DeltaAggregatedResources as (c: grpc.ServerDuplexStream<unknown, unknown>) => void)(call as unknown as grpc.ServerDuplexStream<unknown, unknown>);
    call.request({ node: { id: 'gw1', cluster: '', metadata: { fields: { kind: { stringValue: 'agent' }, socketPlane: { stringValue: socketPlane } } } } });
    const deadline = Date.now() + 5000;
    while (call.written.length === 0 && !call.status) {
      assert.ok(Date.now() < deadline, 'answered or ended');
      await new Promise((r) => setTimeout(r, 5));
    }
    return call;
  };

  it('refuses a second agent of another join, lets the same agent replace its stale stream, and withdraws the address when the holder ends', async () => {
    const first = await agent('A1', '127.0.0.1:1');
    assert.equal(server.hostOwner('gw1'), 'A1');
    const rogue = await agent('B1', '127.0.0.1:2');
    assert.equal(rogue.status?.code, grpc.status.ALREADY_EXISTS);
    assert.match(rogue.status?.details ?? '', /host gw1 already has a live agent \(advertising 127\.0\.0\.1:1/);
    assert.deepEqual(connected, ['gw1 127.0.0.1:1']);
    assert.deepEqual(disconnected, [], 'a refused stream withdraws nothing');
    // The same agent back (its renewed certificate): it replaces the stale stream.
    const back = await agent('A2', '127.0.0.1:3');
    assert.equal(first.status?.code, grpc.status.UNAVAILABLE);
    assert.equal(back.status, undefined);
    assert.equal(server.hostOwner('gw1'), 'A2');
    assert.deepEqual(connected, ['gw1 127.0.0.1:1', 'gw1 127.0.0.1:3']);
    back.emit('end');
    await new Promise((r) => setTimeout(r, 10));
    assert.deepEqual(disconnected, ['gw1 @2'], 'the holder\'s end withdraws the address it announced');
    assert.equal(server.hostOwner('gw1'), undefined);
    assert.equal(server.closeRevoked(new Set(['A2'])), 0, 'nothing left to close');
  });

  it('closes the streams of revoked certificates', async () => {
    const live = await agent('A1', '127.0.0.1:1');
    assert.equal(server.closeRevoked(new Set(['Z9'])), 0);
    assert.equal(server.closeRevoked(new Set(['A1'])), 1);
    assert.equal(live.status?.code, grpc.status.UNAUTHENTICATED);
    assert.match(live.status?.details ?? '', /A1 was revoked/);
  });
});
