import { strict as assert } from 'node:assert';
import { setTimeout as sleep } from 'node:timers/promises';
import pino from 'pino';
import type { DeviceMeshError } from '../../../src/errors';
import { EMPTY_POLICY } from '../../../src/model/policy-defaults';
import type { Mapping } from '../../../src/proto/types';
import type { OpenDecision } from '../../../src/socket-plane/connection';
import { INITIAL_WINDOW } from '../../../src/socket-plane/frame';
import type { Session } from '../../../src/socket-plane/session';
import { Stats } from '../../../src/telemetry/stats';
import { RoamingMoves } from '../../../sidecar/roaming-moves';
import { RoamingSession, type RoamingTarget } from '../../../sidecar/roaming-session';
import { type Loopback, loopback, once, openPair } from '../socket-plane/loopback';

function mapping(host: string, agentAddress: string): Mapping {
  return {
    id: 'follow-1',
    binding: 'follow',
    workloadId: 'app1',
    virtual: { workloadId: 'app1', name: 'modem', protocol: 'VIRTUAL_PROTOCOL_RAW', listen: '127.0.0.1:7000' },
    physicalId: `${host}/usb-0403:6001:A1`,
    hostId: host,
    devicePath: '/dev/ttyUSB0',
    kind: 'DEVICE_KIND_SERIAL',
    agentAddress,
    policy: { ...EMPTY_POLICY, queueDepth: 4, roamingHoldMs: 300 },
    serial: null,
    version: '1',
    settings: {},
    adaptiveLimit: null,
    roaming: true,
  };
}

/** Collects what a device-side session receives. */
function received(session: Session): () => string {
  const chunks: Buffer[] = [];
  session.on('data', (chunk: Buffer) => {
    chunks.push(chunk);
    session.consumed(chunk.length);
  });
  return () => Buffer.concat(chunks).toString('latin1');
}

/** Two gateways (a real socket-plane connection each) and a target the test points at one or the other. */
describe('sidecar: a roaming session holds its app across a device move', () => {
  let gwa: Loopback;
  let gwb: Loopback;
  let stats: Stats;
  let moves: RoamingMoves;
  let now: Mapping | undefined;
  let opens: string[];
  /** What the agent on B does with the next OPEN. */
  let bAccepts: boolean;
  const log = pino({ level: 'silent' });

  const target: RoamingTarget = {
    current: () => now,
    open: (m) => {
      opens.push(m.hostId);
      const lb = m.hostId === 'gwa' ? gwa : gwb;
      if (!bAccepts && m.hostId === 'gwb') {
        void once<OpenDecision>(lb.server, 'open').then((d) => d.refuse({ code: 'NOT_FOUND', message: 'no such mapping yet' }));
        return lb.client.openSession({ mappingId: m.id, workloadId: 'app1' });
      }
      return openPair(lb).then((p) => {
        deviceSide.set(m.hostId, p.server);
        texts.set(m.hostId, received(p.server));
        return p.client;
      });
    },
  };
  const deviceSide = new Map<string, Session>();
  /** What each gateway's device side has received, collected from its accept on. */
  const texts = new Map<string, () => string>();

  beforeEach(async () => {
    [gwa, gwb] = await Promise.all([loopback(), loopback()]);
    stats = new Stats();
    moves = new RoamingMoves();
    now = mapping('gwa', 'a:1');
    opens = [];
    bAccepts = true;
    deviceSide.clear();
    texts.clear();
  });
  afterEach(async () => {
    await Promise.all([gwa.close(), gwb.close()]);
  });

  const LIMITS = { holdMs: 5_000, depth: 4 };

  async function start(holdMs = 300): Promise<{ roaming: RoamingSession; onA: Session }> {
    const m = now as Mapping;
    const opened = await target.open(m);
    const roaming = new RoamingSession(opened, m, target, { holdMs, depth: 4, stats, log, moves });
    return { roaming, onA: deviceSide.get('gwa') as Session };
  }

  it('keeps what the app sends while the device is away and delivers it, in order, on the new gateway', async () => {
    const { roaming, onA } = await start(5_000);
    const atA = texts.get('gwa') as () => string;
    assert.equal(roaming.write(Buffer.from('before;')), true);
    await sleep(50);
    assert.equal(atA(), 'before;');
    onA.reset({ code: 'DEVICE_ERROR', message: 'device /dev/ttyUSB0 removed' });
    await sleep(50);
    assert.equal(roaming.holding, true);
    assert.equal(roaming.closed, false, 'the app side stays open');
    assert.equal(roaming.write(Buffer.from('held-1;')), true);
    assert.equal(roaming.write(Buffer.from('held-2;')), true);
    await assert.rejects(roaming.command({ op: 1, target: '', value: 0, data: Buffer.alloc(0) }), (err: DeviceMeshError) => err.code === 'UNAVAILABLE');
    // The mapping now leads to gateway B.
    now = mapping('gwb', 'b:1');
    roaming.mappingChanged(LIMITS);
    await sleep(100);
    const onB = deviceSide.get('gwb') as Session;
    assert.ok(onB, 'a session opened on B');
    const atB = texts.get('gwb') as () => string;
    assert.equal(roaming.write(Buffer.from('after;')), true);
    await sleep(50);
    assert.equal(atB(), 'held-1;held-2;after;', 'held bytes first, in order, then the live ones');
    // B's answers reach the app through the same relay.
    const answers: string[] = [];
    roaming.on('data', (c: Buffer) => answers.push(c.toString()));
    onB.write(Buffer.from('OK'));
    await sleep(50);
    assert.deepEqual(answers, ['OK']);
    assert.equal(roaming.holding, false);
    assert.equal(stats.get('roaming_holds', { mapping: 'follow-1' }), 1);
    assert.equal(stats.get('roaming_resumes', { mapping: 'follow-1' }), 1);
    assert.equal(stats.get('roaming_held_bytes', { mapping: 'follow-1' }), 14);
    const [move] = moves.list();
    assert.equal(move?.outcome, 'resumed');
    assert.equal(move?.from, 'gwa/usb-0403:6001:A1');
    assert.equal(move?.to, 'gwb/usb-0403:6001:A1');
    assert.equal(move?.heldBytes, 14);
    roaming.reset({ code: 'UNAVAILABLE', message: 'test over' });
  });

  it('opens on the new gateway at once when the mapping moved before the old session was lost', async () => {
    const { roaming, onA } = await start(5_000);
    now = mapping('gwb', 'b:1');
    roaming.mappingChanged(LIMITS);
    assert.deepEqual(opens, ['gwa'], 'a live session is not moved');
    onA.reset({ code: 'UNAVAILABLE', message: 'agent gwa shutting down' });
    await sleep(100);
    assert.deepEqual(opens, ['gwa', 'gwb']);
    assert.equal(roaming.holding, false);
    roaming.reset({ code: 'UNAVAILABLE', message: 'test over' });
  });

  it('tries again while the new agent refuses (its mapping not there yet), and waits while the mapping is withdrawn', async () => {
    const { roaming, onA } = await start(5_000);
    now = undefined;
    onA.reset({ code: 'DEVICE_ERROR', message: 'device removed' });
    await sleep(300);
    assert.deepEqual(opens, ['gwa'], 'no open while the mapping is withdrawn');
    bAccepts = false;
    now = mapping('gwb', 'b:1');
    roaming.mappingChanged(LIMITS);
    await sleep(100);
    assert.equal(roaming.holding, true, 'still held after a refusal');
    bAccepts = true;
    await waitUntil(() => !roaming.holding, 2_000);
    assert.ok(opens.filter((h) => h === 'gwb').length >= 2, `opens: ${opens.join(',')}`);
    roaming.reset({ code: 'UNAVAILABLE', message: 'test over' });
  });

  it('stops taking the app\'s writes at the queue depth, and lets them flow again once resumed', async () => {
    const { roaming, onA } = await start(5_000);
    onA.reset({ code: 'DEVICE_ERROR', message: 'device removed' });
    await sleep(50);
    const results = [1, 2, 3, 4].map((n) => roaming.write(Buffer.from(`w${n};`)));
    assert.deepEqual(results, [true, true, true, false], 'the fourth held write fills the depth of 4');
    const drained = once(roaming, 'drain', 2_000);
    now = mapping('gwb', 'b:1');
    roaming.mappingChanged(LIMITS);
    await drained;
    const atB = texts.get('gwb') as () => string;
    await sleep(50);
    assert.equal(atB(), 'w1;w2;w3;w4;');
    roaming.reset({ code: 'UNAVAILABLE', message: 'test over' });
  });

  it('past the deadline, ends with the lost session\'s error saying how long it waited, and counts the bytes dropped', async () => {
    const { roaming, onA } = await start(200);
    onA.reset({ code: 'DEVICE_ERROR', message: 'device /dev/ttyUSB0 removed' });
    await sleep(20);
    roaming.write(Buffer.from('lost'));
    const [err] = await once<[DeviceMeshError]>(roaming, 'close', 2_000).then((e) => [e as unknown as DeviceMeshError]);
    assert.equal(err.code, 'DEVICE_ERROR');
    assert.equal(err.message, 'device /dev/ttyUSB0 removed; not back on any gateway within 200 ms (4 held bytes dropped)');
    assert.equal(roaming.closed, true);
    assert.equal(stats.get('roaming_hold_expiries', { mapping: 'follow-1' }), 1);
    assert.equal(stats.get('roaming_held_bytes_dropped', { mapping: 'follow-1' }), 4);
    assert.equal(moves.list()[0]?.outcome, 'expired');
  });

  it('takes a changed policy\'s deadline for the next hold (the binding re-applied while the app stays connected)', async () => {
    const { roaming, onA } = await start(5_000);
    roaming.mappingChanged({ holdMs: 150, depth: 4 });
    assert.equal(roaming.holding, false, 'a live session is not disturbed');
    onA.reset({ code: 'DEVICE_ERROR', message: 'device /dev/ttyUSB0 removed' });
    const [err] = await once<[DeviceMeshError]>(roaming, 'close', 2_000).then((e) => [e as unknown as DeviceMeshError]);
    assert.equal(err.message, 'device /dev/ttyUSB0 removed; not back on any gateway within 150 ms (0 held bytes dropped)');
  });

  it('an app that overruns the held writes (ignoring backpressure) gets RESOURCE_EXHAUSTED at once', async () => {
    const { roaming, onA } = await start(5_000);
    onA.reset({ code: 'DEVICE_ERROR', message: 'device removed' });
    await sleep(20);
    const closed = once<DeviceMeshError>(roaming, 'close', 1_000);
    for (let i = 0; i < 9; i++) roaming.write(Buffer.from('x'));
    const err = await closed;
    assert.equal(err.code, 'RESOURCE_EXHAUSTED');
    assert.match(err.message, /more than 4 writes held while the device moved/);
  });

  it('does not hold for a clean end or a refusal that is not the device going away', async () => {
    for (const code of ['PERMISSION_DENIED', 'RESOURCE_EXHAUSTED'] as const) {
      const { roaming, onA } = await start(5_000);
      const closed = once<DeviceMeshError>(roaming, 'close', 1_000);
      onA.reset({ code, message: 'no' });
      assert.equal((await closed).code, code);
      assert.equal(roaming.holding, false);
    }
    const { roaming, onA } = await start(5_000);
    const closed = once<DeviceMeshError | undefined>(roaming, 'close', 1_000);
    onA.end();
    roaming.end();
    assert.equal(await closed, undefined);
    assert.equal(stats.get('roaming_holds', { mapping: 'follow-1' }), 0);
  });

  it('gives no credit to the new session for device bytes of the lost one that the app takes late', async () => {
    const { roaming, onA } = await start(5_000);
    let taken = 0;
    roaming.on('data', (c: Buffer) => (taken += c.length));
    // A quarter window: enough for a WINDOW frame once consumed.
    onA.write(Buffer.alloc(INITIAL_WINDOW / 4, 0x61));
    await waitUntil(() => taken === INITIAL_WINDOW / 4, 2_000);
    now = mapping('gwb', 'b:1');
    onA.reset({ code: 'DEVICE_ERROR', message: 'device removed' });
    await waitUntil(() => deviceSide.has('gwb'), 2_000);
    const onB = deviceSide.get('gwb') as Session;
    // The app takes A's bytes only now: were their credit passed on, B could send past its window.
    roaming.consumed(INITIAL_WINDOW / 4);
    await sleep(50);
    assert.equal(onB.write(Buffer.alloc(INITIAL_WINDOW, 0x62)), false, "B's window is exactly its own");
    roaming.reset({ code: 'UNAVAILABLE', message: 'test over' });
  });
});

async function waitUntil(ok: () => boolean, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > deadline) throw new Error(`not within ${ms} ms`);
    await sleep(20);
  }
}
