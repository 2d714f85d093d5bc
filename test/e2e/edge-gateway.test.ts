import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { AppClient } from '../helpers/app-client';
import { NmeaSensor, nmeaSentences } from '../helpers/nmea-sensor';
import { cli, createToken, freePort, httpGet, MeshProcess, REPO_ROOT, waitFor } from '../helpers/processes';
import { haveSocat, PtyPair } from '../helpers/pty';

/** Starts one mesh process; the one place to adapt when the processes' flags change. */
function startProcess(name: string, args: string[]): MeshProcess {
  return MeshProcess.start(name, args);
}

/**
 * The edge gateway profile (deploy/edge/, docs/deploy.md): an agent on the gateway with a GPS
 * receiver (NMEA 0183 on a socat pty), and two workloads elsewhere reading it at once through
 * their sidecars. Every process runs from the profile's own config files, addresses localized.
 */
describe('e2e: edge gateway profile — an NMEA sensor, two workloads', function () {
  this.timeout(90_000);
  let dir: string;
  let pty: PtyPair | undefined;
  let sensor: NmeaSensor | undefined;
  const running: MeshProcess[] = [];
  let ports: Record<'cp' | 'cpAdmin' | 'agent' | 'agentAdmin' | 'tracker' | 'logger' | 'trackerAdmin' | 'loggerAdmin', number>;

  /** A profile file with this machine's addresses and the pty in place of /dev/ttyUSB*. */
  const localized = (name: string): string => {
    const replacements: [string, string][] = [
      ['192.0.2.1:15010', `127.0.0.1:${ports.cp}`],
      ['0.0.0.0:15020', `127.0.0.1:${ports.agent}`],
      ['192.0.2.10:15020', `127.0.0.1:${ports.agent}`],
      ['127.0.0.1:15002', `127.0.0.1:${ports.agentAdmin}`],
      ['127.0.0.1:15001', `127.0.0.1:${ports.trackerAdmin}`],
      ['127.0.0.1:15011', `127.0.0.1:${ports.loggerAdmin}`],
      ['127.0.0.1:4001', `127.0.0.1:${ports.tracker}`],
      ['127.0.0.1:4002', `127.0.0.1:${ports.logger}`],
      ['/dev/ttyUSB', path.join(dir, 'ttyUSB')],
      ['/etc/devicemesh/', `${path.join(dir, 'etc')}/`],
      ['/var/lib/devicemesh/', `${path.join(dir, 'state')}/`],
    ];
    let text = fs.readFileSync(path.join(REPO_ROOT, 'deploy', 'edge', name), 'utf8');
    // One pass, so a free port put in by one replacement (say 40023) is not taken for another's pattern (127.0.0.1:4002).
    const byFrom = new Map(replacements);
    const pattern = new RegExp(replacements.map(([from]) => from.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&') + (/\d$/.test(from) ? '(?!\\d)' : '')).join('|'), 'g');
    text = text.replace(pattern, (match) => byFrom.get(match) as string);
    const file = path.join(dir, name);
    fs.writeFileSync(file, text);
    return file;
  };

  before(async function () {
    if (!haveSocat()) {
      console.log('    skipped: socat is not installed (scripts/install-test-deps.sh installs it)');
      this.skip();
    }
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'devicemesh-edge-'));
    const names = ['cp', 'cpAdmin', 'agent', 'agentAdmin', 'tracker', 'logger', 'trackerAdmin', 'loggerAdmin'] as const;
    ports = Object.fromEntries(await Promise.all(names.map(async (n) => [n, await freePort()]))) as typeof ports;
    pty = await PtyPair.create(path.join(dir, 'ttyUSB0'), path.join(dir, 'gps-peer'));
    sensor = await NmeaSensor.open(pty.peer, 50);

    running.push(
      startProcess('edge-control-plane', [
        'control-plane', '--listen', `127.0.0.1:${ports.cp}`, '--admin', `127.0.0.1:${ports.cpAdmin}`, '--data-dir', path.join(dir, 'data'),
      ]),
    );
    await waitFor('the control plane', async () => (await httpGet(`http://127.0.0.1:${ports.cpAdmin}/ready`)).status === 200, 20_000);
    // The members' token files, as an operator provisions them (docs/deploy.md): minted by the CLI with the operator credential.
    fs.mkdirSync(path.join(dir, 'etc'));
    for (const [kind, id] of [['host', 'gw-edge'], ['workload', 'tracker'], ['workload', 'logger']] as const) {
      fs.writeFileSync(path.join(dir, 'etc', `${id}.token`), await createToken(`127.0.0.1:${ports.cp}`, kind, id));
    }
    running.push(startProcess('edge-agent', ['agent', '--config', localized('agent.yaml')]));
    running.push(startProcess('edge-sidecar-tracker', ['sidecar', '--config', localized('sidecar-tracker.yaml')]));
    running.push(startProcess('edge-sidecar-logger', ['sidecar', '--config', localized('sidecar-logger.yaml')]));
    await waitFor('the gateway to report its GPS', () => /gw-edge\/\S*ttyUSB0/.test(cli(['get', 'endpoints', '--control-plane', `127.0.0.1:${ports.cp}`]).stdout), 20_000);
    const applied = cli(['apply', '-f', localized('bindings.yaml'), '--control-plane', `127.0.0.1:${ports.cp}`]);
    assert.equal(applied.code, 0, applied.stderr);
  });

  after(async () => {
    await Promise.all(running.map((p) => p.stop()));
    await sensor?.close();
    await pty?.remove();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('both workloads read the same, complete, valid sentences at the same time', async () => {
    const connect = (port: number): Promise<AppClient> =>
      waitFor(`a virtual GPS on ${port}`, () => AppClient.connect(port).catch(() => undefined), 30_000);
    const [tracker, logger] = await Promise.all([connect(ports.tracker), connect(ports.logger)]);
    try {
      // 20 sentences of about 70 bytes each, both at once.
      const [a, b] = await Promise.all([tracker.take(1400, 30_000), logger.take(1400, 30_000)]);
      const read = (buf: Buffer): Map<number, string> => {
        // A reader may join mid-sentence: its first line is cut; every later one is whole.
        const text = buf.toString('latin1');
        const sentences = nmeaSentences(text.slice(text.indexOf('$')));
        assert.ok(sentences.length >= 15, `only ${sentences.length} sentences`);
        const bySeq = new Map<number, string>();
        let last = -1;
        for (const s of sentences) {
          assert.ok(s.valid, `bad checksum or framing: ${JSON.stringify(s.body)}`);
          const seq = Number(s.body.split(',')[1]);
          if (last >= 0) assert.equal(seq, last + 1, 'a sentence was lost or reordered');
          last = seq;
          bySeq.set(seq, s.body);
        }
        return bySeq;
      };
      const fromTracker = read(a);
      const fromLogger = read(b);
      const common = [...fromTracker.keys()].filter((seq) => fromLogger.has(seq));
      assert.ok(common.length >= 10, `the two workloads overlap in only ${common.length} sentences`);
      for (const seq of common) assert.equal(fromTracker.get(seq), fromLogger.get(seq));
    } finally {
      tracker.close();
      logger.close();
    }
  });

  it('the workloads cannot write to the receiver (read-only)', async () => {
    const app = await AppClient.connect(ports.tracker);
    try {
      app.socket.write('$PMTK220,1000*1F\r\n');
      await waitFor('the read-only session to be refused or closed', () => app.closed, 15_000);
      assert.equal(sensor?.received, 0, 'a read-only workload\'s bytes reached the receiver');
    } finally {
      app.close();
    }
  });
});
