import { strict as assert } from 'node:assert';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { ListEndpointsResponse } from '../../src/proto/types';
import { EchoResponder } from '../helpers/echo-responder';
import { cli, freePort, httpGet, MeshProcess, waitFor } from '../helpers/processes';
import { haveSocat, PtyPair } from '../helpers/pty';
import { closesFramingBreakers, modemAnswersSettingsAndQueries, modemStateReachesPySerial, modemWorksAt7E1, movesEveryByteValue, sttyShows9600TwoStopBitsRtsCts, TWO_PROTOCOL_ERRORS } from '../helpers/rfc2217-cases';
import { havePySerial, PySerialClient, TelnetClient } from '../helpers/rfc2217-clients';

/**
 * Issue 5's RFC 2217 acceptance on real processes: pyserial (an independent, strict client) →
 * sidecar → agent → a socat pty with an echo on its far end, and → the agent's simulated modem.
 */
describe('e2e: RFC 2217 clients through the mesh to a pty and a simulated modem', function () {
  this.timeout(120_000);

  let tmp: string;
  let cp: string;
  let ports: Record<'cp' | 'cpAdmin' | 'agent' | 'agentAdmin' | 'sidecarAdmin' | 'pty' | 'sim', number>;
  let controlPlane: MeshProcess;
  let agent: MeshProcess;
  let sidecar: MeshProcess;
  let pty: PtyPair;
  let echo: EchoResponder;
  const clients: Array<PySerialClient | TelnetClient> = [];

  const binding = (name: string, device: string, port: number, sharing: string): string => `
kind: Binding
name: ${name}
workload: app1
device: { host: gw1, path: ${device} }
virtual: { name: ${name}, protocol: rfc2217, listen: 127.0.0.1:${port} }
policy: { sharing: ${sharing} }
serial: { baudRate: 115200, dataBits: 8, parity: none, stopBits: 1, flowControl: none }
`;
  const pyserial = async (port: number, settings: Record<string, unknown> = {}): Promise<PySerialClient> => {
    const c = await PySerialClient.open(port, settings);
    clients.push(c);
    return c;
  };
  const telnet = async (port: number): Promise<TelnetClient> => {
    const c = await TelnetClient.connect(port);
    clients.push(c);
    return c;
  };
  /** The pty's line settings as the kernel has them. */
  const stty = (): string => execFileSync('stty', ['-F', pty.device, '-a'], { encoding: 'utf8' });

  before(async function () {
    if (!haveSocat() || !havePySerial()) {
      console.log('    skipped: socat or python3-serial is not installed (scripts/install-test-deps.sh installs them)');
      this.skip();
    }
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'dm-e2e-rfc2217-'));
    ports = {
      cp: await freePort(),
      cpAdmin: await freePort(),
      agent: await freePort(),
      agentAdmin: await freePort(),
      sidecarAdmin: await freePort(),
      pty: await freePort(),
      sim: await freePort(),
    };
    cp = `127.0.0.1:${ports.cp}`;
    pty = await PtyPair.create(path.join(tmp, 'ttyRFC0'), path.join(tmp, 'peer0'));
    echo = await EchoResponder.open(pty.peer);
    controlPlane = MeshProcess.start('e2e-rfc2217-control-plane', [
      'control-plane', '--listen', cp, '--admin', `127.0.0.1:${ports.cpAdmin}`, '--data-dir', path.join(tmp, 'data'),
    ]);
    agent = MeshProcess.start('e2e-rfc2217-agent', [
      'agent', '--host-id', 'gw1', '--control-plane', cp, '--listen', `127.0.0.1:${ports.agent}`,
      '--watch', path.join(tmp, 'tty*'), '--simulate', 'modem', '--admin', `127.0.0.1:${ports.agentAdmin}`,
    ]);
    sidecar = MeshProcess.start('e2e-rfc2217-sidecar', [
      'sidecar', '--workload-id', 'app1', '--control-plane', cp, '--admin', `127.0.0.1:${ports.sidecarAdmin}`,
    ]);
    await waitFor('the pty and the simulated modem in the register', () => {
      const r = cli(['get', 'endpoints', '-o', 'json', '--control-plane', cp]);
      if (r.code !== 0) return false;
      const { endpoints } = JSON.parse(r.stdout) as ListEndpointsResponse;
      const present = endpoints.filter((e) => e.state === 'ENDPOINT_STATE_PRESENT').map((e) => e.path);
      return present.includes(pty.device) && present.includes('sim:modem0');
      // The agent joins only once its background token is made: a CLI run of seconds, retried with backoff.
    }, 90_000);
    const file = path.join(tmp, 'bindings.yaml');
    fs.writeFileSync(file, [binding('rfc-pty', pty.device, ports.pty, 'broadcast'), binding('rfc-sim', 'sim:modem0', ports.sim, 'exclusive')].join('---'));
    const applied = cli(['apply', '-f', file, '--control-plane', cp]);
    assert.equal(applied.code, 0, applied.stderr);
    for (const port of [ports.pty, ports.sim]) {
      await waitFor('the virtual device to listen', () => TelnetClient.connect(port).then((c) => (c.destroy(), true)), 15_000);
    }
  });

  afterEach(async () => {
    for (const c of clients.splice(0)) {
      if (c instanceof PySerialClient) await c.close();
      else c.destroy();
    }
  });

  after(async () => {
    await Promise.all([sidecar?.stop(), agent?.stop(), controlPlane?.stop()]);
    await echo?.close();
    await pty?.remove();
  });

  it('moves data both ways through pyserial, every byte value and 0xFF runs included', async () => {
    await movesEveryByteValue(await pyserial(ports.pty));
  });

  it('9600 baud, 2 stop bits and RTS/CTS from pyserial are what the kernel has on the pty', async () => {
    await pyserial(ports.pty, { baudrate: 9600, stopbits: 2, rtscts: true });
    sttyShows9600TwoStopBitsRtsCts(stty());
  });

  // A pty keeps CS8 and no parity whatever is asked (Linux's pty_set_termios), so 7E1 goes to the
  // simulated modem; rfc2217-agent.test.ts shows its binding receiving exactly that.
  it('7 data bits and even parity on the simulated modem: answered as asked, and the modem works at them', async () => {
    await modemWorksAt7E1(await pyserial(ports.sim, { bytesize: 7, parity: 'E' }));
  });

  it('on the simulated modem: settings answered as asked, queries answer the value in use', async () => {
    await modemAnswersSettingsAndQueries(await telnet(ports.sim));
  });

  it('modem-state notifications reach pyserial: carrier detect after dialling, DSR after DTR drops', async () => {
    await modemStateReachesPySerial(await pyserial(ports.sim));
  });

  it('closes clients that break the framing, ignores harmless garbage, and leaves the others untouched', async () => {
    await closesFramingBreakers(await pyserial(ports.pty), () => telnet(ports.pty));
    const text = (await httpGet(`http://127.0.0.1:${ports.sidecarAdmin}/stats`)).body;
    assert.match(text, TWO_PROTOCOL_ERRORS);
    assert.equal(sidecar.child.exitCode, null, 'the sidecar still runs');
  });
});
