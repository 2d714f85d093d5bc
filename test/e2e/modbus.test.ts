import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ModbusSlave, type OneResult, type PollResult, WireTap, havePymodbus, modbusClient } from '../helpers/modbus-apps';
import { cli, freePort, httpGet, MeshProcess, waitFor } from '../helpers/processes';
import { startOneGatewayMesh } from '../helpers/one-gateway-mesh';
import { haveSocat, PtyPair } from '../helpers/pty';

const TIMEOUT_MS = 500;

/** Jain's fairness index of the counts: 1 when all are equal, 1/n when one has everything. */
function jain(counts: readonly number[]): number {
  const sum = counts.reduce((a, b) => a + b, 0);
  const squares = counts.reduce((a, b) => a + b * b, 0);
  return (sum * sum) / (counts.length * squares);
}

/**
 * Issue 19's first acceptance over the real processes: pymodbus's TCP client as the apps, through
 * the sidecar's modbus-tcp virtual device and the agent's Modbus RTU framing, to pymodbus's RTU
 * server with units 1–3 on the far end of a socat pty — with a wire tap between the two that can
 * corrupt a response as noise would.
 */
describe('e2e: Modbus TCP apps sharing one Modbus RTU bus', function () {
  this.timeout(180_000);

  let tmp: string;
  let cp: string;
  let agentAdmin: number;
  let controlPlane: MeshProcess;
  let agent: MeshProcess;
  const sidecars: MeshProcess[] = [];
  const ptys: PtyPair[] = [];
  let slave: ModbusSlave;
  let tap: WireTap;
  let rw: number;
  let ro: number;

  before(async function () {
    if (!haveSocat() || !havePymodbus()) {
      console.log('    skipped: needs socat and python3-pymodbus with python3-serial-asyncio (scripts/install-test-deps.sh installs them)');
      this.skip();
    }
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'dm-modbus-'));
    cp = `127.0.0.1:${await freePort()}`;
    agentAdmin = await freePort();
    rw = await freePort();
    ro = await freePort();
    // The agent's pty ↔ the wire tap ↔ the slave's pty.
    const bus = await PtyPair.create(path.join(tmp, 'ttyBus'), path.join(tmp, 'wireMaster'));
    const far = await PtyPair.create(path.join(tmp, 'wireSlave'), path.join(tmp, 'slavePort'));
    ptys.push(bus, far);
    tap = await WireTap.open(bus.peer, far.device);
    slave = await ModbusSlave.start(far.peer, [1, 2, 3]);
    const mesh = await startOneGatewayMesh('e2e-modbus', tmp, cp, agentAdmin, ['app1', 'app2']);
    ({ controlPlane, agent } = mesh);
    sidecars.push(...mesh.sidecars);
    await waitFor('the agent to register the bus', () => {
      const r = cli(['get', 'endpoints', '-o', 'json', '--control-plane', cp]);
      return r.code === 0 && (JSON.parse(r.stdout) as { endpoints: Array<{ state: string }> }).endpoints.some((e) => e.state === 'ENDPOINT_STATE_PRESENT');
    }, 60_000);
    const file = path.join(tmp, 'bindings.yaml');
    const serial = 'serial: { baudRate: 115200, dataBits: 8, parity: none, stopBits: 1 }';
    fs.writeFileSync(
      file,
      [
        `kind: Binding\nname: plc-rw\nworkload: app1\ndevice: { host: gw1, path: ${bus.device} }\nvirtual: { name: plc, protocol: modbus-tcp, listen: 127.0.0.1:${rw} }\npolicy: { commandTimeoutMs: ${TIMEOUT_MS} }\n${serial}\n`,
        `kind: Binding\nname: plc-ro\nworkload: app2\ndevice: { host: gw1, path: ${bus.device} }\nvirtual: { name: plc, protocol: modbus-tcp, listen: 127.0.0.1:${ro} }\npolicy: { access: read-only, units: [2, 3], commandTimeoutMs: ${TIMEOUT_MS} }\n${serial}\n`,
      ].join('---\n'),
    );
    const applied = cli(['apply', '-f', file, '--control-plane', cp]);
    assert.equal(applied.code, 0, applied.stderr);
    for (const port of [rw, ro]) {
      await waitFor(`the modbus-tcp device on ${port} to answer`, async () => (await modbusClient<OneResult>('read', port, { unit: 2, count: 1, timeout: 2 })).registers !== undefined, 60_000);
    }
  });

  after(async () => {
    await Promise.all([...sidecars.map((s) => s.stop()), agent?.stop(), controlPlane?.stop()]);
    await tap?.close();
    await slave?.stop();
    for (const p of ptys) await p.remove();
  });

  const exceptions = async (reason: string): Promise<number> => {
    const body = (await httpGet(`http://127.0.0.1:${agentAdmin}/stats/prometheus`)).body;
    return body
      .split('\n')
      .filter((l) => /^devicemesh_modbus_exceptions(_total)?\{/.test(l) && l.includes(`reason="${reason}"`))
      .reduce((sum, l) => sum + Number(l.split(' ').pop()), 0);
  };

  it('gives four pymodbus clients polling units 1–3 for 10 s each its own answers, fairly, with no CRC error', async () => {
    const crcBefore = await exceptions('crc');
    const clients: Array<[number, number]> = [[rw, 1], [rw, 2], [rw, 3], [ro, 2]];
    const results = await Promise.all(clients.map(([port, unit]) => modbusClient<PollResult>('poll', port, { unit, seconds: 10, count: 10 })));
    const counts = results.map((r) => r.ok);
    const fairness = jain(counts);
    console.log(`      answers in 10 s per client (units ${clients.map(([, u]) => u).join(', ')}): ${counts.join(' / ')}; Jain's fairness ${fairness.toFixed(4)}`);
    for (const r of results) {
      assert.deepEqual(r.mismatches, [], `unit ${r.unit}: answers that were not its request's`);
      assert.equal(r.errors, 0, `unit ${r.unit}: ${r.first_error}`);
      assert.deepEqual(r.exceptions, {}, `unit ${r.unit}: exceptions`);
      assert.ok(r.ok > 0 && r.ok === r.requests, `unit ${r.unit}: ${r.ok} of ${r.requests} answered`);
    }
    assert.ok(fairness >= 0.95, `Jain's fairness ${fairness}`);
    assert.equal((await exceptions('crc')) - crcBefore, 0, 'CRC errors on the bus');
  });

  it("answers a read-only binding's write with exception 0x01, and the slave's register stays as it was", async () => {
    const writesBefore = slave.writes.length;
    const refused = await modbusClient<OneResult>('write', ro, { unit: 2, address: 5, value: 4242 });
    assert.equal(refused.exception, 0x01, JSON.stringify(refused));
    const after = await modbusClient<OneResult>('read', rw, { unit: 2, address: 5, count: 1 });
    assert.deepEqual(after.registers, [2005]);
    assert.equal(slave.writes.length, writesBefore, 'the slave executed a write');
    // The same write through the read-write binding reaches the slave: the refusal was the policy's.
    const written = await modbusClient<OneResult>('write', rw, { unit: 2, address: 5, value: 4242 });
    assert.equal(written.exception, null, JSON.stringify(written));
    assert.deepEqual(slave.writes.slice(writesBefore), [{ write: 2, function: 6, address: 5, values: [4242] }]);
    assert.equal((await modbusClient<OneResult>('write', rw, { unit: 2, address: 5, value: 2005 })).exception, null);
    console.log(`      read-only write → exception 0x01, register 5 of unit 2 still 2005; the read-write binding's write reached the slave`);
  });

  it('answers a unit outside the binding\'s units with exception 0x0A without touching the bus', async () => {
    const refused = await modbusClient<OneResult>('read', ro, { unit: 1, count: 1 });
    assert.equal(refused.exception, 0x0a, JSON.stringify(refused));
    assert.equal(refused.unit, 1);
  });

  it('answers a unit that does not answer with 0x0B within the timeout while the others keep flowing', async () => {
    const others = Promise.all([1, 3].map((unit) => modbusClient<PollResult>('poll', rw, { unit, seconds: 4, count: 4 })));
    await new Promise((r) => setTimeout(r, 500));
    const silent = await modbusClient<OneResult>('read', rw, { unit: 4, count: 1, timeout: 5 });
    const flowing = await others;
    console.log(`      unit 4 (absent): exception 0x${(silent.exception ?? 0).toString(16)} after ${(silent.seconds! * 1000).toFixed(0)} ms (timeout ${TIMEOUT_MS} ms); units 1 and 3 meanwhile: ${flowing.map((r) => r.ok).join(' / ')} answers`);
    assert.equal(silent.exception, 0x0b, JSON.stringify(silent));
    assert.ok(silent.seconds! >= TIMEOUT_MS / 1000 * 0.9 && silent.seconds! < TIMEOUT_MS / 1000 + 2, `answered after ${silent.seconds} s`);
    for (const r of flowing) {
      assert.deepEqual(r.mismatches, []);
      assert.equal(r.errors, 0, r.first_error);
      assert.deepEqual(r.exceptions, {});
      assert.ok(r.ok > 0);
    }
    assert.ok((await exceptions('timeout')) >= 1);
  });

  it('counts a response corrupted on the wire and answers it 0x0B, never passing it on', async () => {
    const crcBefore = await exceptions('crc');
    tap.corruptNextResponse();
    const hit = await modbusClient<OneResult>('read', rw, { unit: 3, address: 0, count: 10 });
    assert.equal(tap.corrupted, 1, 'the tap corrupted one response');
    assert.equal(hit.exception, 0x0b, `the client got ${JSON.stringify(hit)}`);
    assert.equal((await exceptions('crc')) - crcBefore, 1);
    const next = await modbusClient<OneResult>('read', rw, { unit: 3, address: 0, count: 2 });
    assert.deepEqual(next.registers, [3000, 3001]);
    console.log('      a response with one bit flipped on the wire: counted as a CRC error, the client got 0x0B, the next read was whole');
  });
});
