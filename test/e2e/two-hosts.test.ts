import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { ListEndpointsResponse, ListProxiesResponse } from '../../src/proto/types';
import { AppClient } from '../helpers/app-client';
import { EchoResponder } from '../helpers/echo-responder';
import { cli, freePort, type MeshProcess, waitFor } from '../helpers/processes';
import { haveSocat, PtyPair } from '../helpers/pty';
import { TestNetwork } from '../helpers/test-network';

/**
 * A workload on one host using a device on a gateway that is another host, the control plane on
 * a third: each process on its own address, the socket plane crossing the network between them.
 */
describe('e2e: a device on one gateway used by a workload on another host', function () {
  this.timeout(120_000);

  let net: TestNetwork;
  let tmp: string;
  let pty: PtyPair;
  let echo: EchoResponder;
  const procs: MeshProcess[] = [];
  let cp: string;

  before(async function () {
    if (!haveSocat()) {
      console.log('    skipped: socat is not installed (the README test command installs it)');
      this.skip();
    }
    net = new TestNetwork();
    console.log(`      hosts: ${net.reason}`);
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'dm-2hosts-'));
    pty = await PtyPair.create(path.join(tmp, 'ttyRemote0'), path.join(tmp, 'peer0'));
    echo = await EchoResponder.open(pty.peer);
  });

  after(async () => {
    await Promise.all(procs.map((p) => p.stop()));
    await echo?.close();
    await pty?.remove();
    net?.close();
  });

  it('relays an app on the workload host to the pty on the gateway host, across the network', async () => {
    const controlHost = net.host('control', 1);
    const gateway = net.host('gateway', 2);
    const workload = net.host('workload', 3);
    const port = await freePort();
    cp = `${controlHost.address}:${port}`;
    procs.push(controlHost.start('e2e-2hosts-control-plane', ['control-plane', '--listen', cp, '--admin', `127.0.0.1:${await freePort()}`, '--data-dir', path.join(tmp, 'data')]));
    procs.push(
      gateway.start('e2e-2hosts-agent', [
        'agent', '--host-id', 'gw-a', '--control-plane', cp, '--listen', `${gateway.address}:${await freePort()}`,
        '--admin', `127.0.0.1:${await freePort()}`, '--watch', path.join(tmp, 'tty*'),
      ]),
    );
    procs.push(workload.start('e2e-2hosts-sidecar', ['sidecar', '--workload-id', 'app-b', '--control-plane', cp, '--admin', `127.0.0.1:${await freePort()}`]));

    await waitFor('the gateway to register the pty', () => {
      const r = cli(['get', 'endpoints', '-o', 'json', '--control-plane', cp]);
      return r.code === 0 && (JSON.parse(r.stdout) as ListEndpointsResponse).endpoints.some((e) => e.hostId === 'gw-a' && e.state === 'ENDPOINT_STATE_PRESENT');
    }, 30_000);
    const virtualPort = await freePort();
    const file = path.join(tmp, 'binding.yaml');
    fs.writeFileSync(
      file,
      `kind: Binding\nname: remote-modem\nworkload: app-b\ndevice: { host: gw-a, path: ${pty.device} }\nvirtual: { name: modem0, protocol: raw, listen: ${workload.address}:${virtualPort} }\n`,
    );
    const applied = cli(['apply', '-f', file, '--control-plane', cp]);
    assert.equal(applied.code, 0, applied.stderr);

    const proxies = await waitFor('the agent and the sidecar connected from their own addresses', () => {
      const r = cli(['get', 'proxies', '-o', 'json', '--control-plane', cp]);
      const list = r.code === 0 ? (JSON.parse(r.stdout) as ListProxiesResponse).proxies : [];
      return list.length === 2 ? list : undefined;
    }, 30_000);
    const peerHost = (kind: string): string => proxies.find((p) => p.kind === kind)?.peer.replace(/^ipv4:/, '').replace(/:\d+$/, '') ?? '';
    assert.equal(peerHost('agent'), gateway.address);
    assert.equal(peerHost('sidecar'), workload.address);

    const app = await waitFor('the virtual device on the workload host', () => AppClient.connect(virtualPort, workload.address).catch(() => undefined), 30_000);
    try {
      const data = Buffer.alloc(256 * 1024);
      for (let i = 0; i < data.length; i++) data[i] = (i * 13) & 0xff;
      assert.ok((await app.roundTrip(data, 30_000)).equals(data), 'the bytes came back changed');
    } finally {
      app.close();
    }
  });
});
