/**
 * bench/modbus: Modbus requests per second on one RTU bus (pymodbus's RTU server, units 1–3, on a
 * socat pty) at 115200 and 9600 baud — one pymodbus RTU client on the pty directly (the baseline:
 * one master alone on the bus), then 1, 4 and 16 pymodbus TCP clients through devicemesh
 * (control plane, agent, sidecar; a modbus-tcp binding) — with the bus-time utilisation: the
 * fraction of the wire's capacity at that baud that the requests and responses occupy. Prints a
 * table and writes bench/results/modbus-<timestamp>.json. See docs/benchmarks.md.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { errorMessage, ValidationError } from '../../src/errors';
import { rtuTiming } from '../../src/modbus/silent-interval';
import { benchArgs, secondsFlag } from '../common/bench-options';
import { cleanUpOnExit, machineInfo, makeTempDir, REPO_ROOT, removeTempDir, runMain, trackChild, writeResults } from '../common/bench-run';
import { waitFor } from '../data-path/children';
import { socatVersion } from '../data-path/pty-echo';
import { SharedMesh } from '../sharing/shared-mesh';

const PYTHON = '/usr/bin/python3';
const TOOLS = path.join(REPO_ROOT, 'test', 'tools');
const UNITS = [1, 2, 3];
/** Holding registers per read: request 8 bytes on the wire, response 5 + 2 × 10. */
const REGISTERS = 10;
const REQUEST_BYTES = 8;
const RESPONSE_BYTES = 5 + 2 * REGISTERS;

const USAGE = [
  'usage: npm run bench:modbus -- [flags]   (or node dist/bench/modbus/main.js [flags])',
  '',
  '  --seconds N     measured seconds per run (default 5)',
  '  --quick         smoke run: 1 s, 1 and 4 clients',
  '  --out FILE      JSON results (default bench/results/modbus-<timestamp>.json)',
].join('\n');

interface Run {
  baud: number;
  /** 'direct' (pymodbus RTU client on the pty) or 'mesh'. */
  path: 'direct' | 'mesh';
  clients: number;
  seconds: number;
  answered: number;
  failed: number;
  requestsPerSecond: number;
  /** Request and response bytes on the wire per second over the wire's capacity. */
  busUtilisation: number;
  /** The same with the 3.5-character silent interval before each frame counted as bus time. */
  busUtilisationWithGaps: number;
}

interface PollOutput {
  requests: number;
  ok: number;
  errors: number;
  mismatches: string[];
  exceptions: Record<string, number>;
}

function progress(message: string): void {
  process.stderr.write(`[bench] ${message}\n`);
}

function started(child: ChildProcess): Promise<string> {
  let out = '';
  child.stdout?.on('data', (c: Buffer) => (out += c.toString()));
  return trackChild(child).then(() => out);
}

/** Runs test/tools/modbus_client.py poll with `args`; its JSON. */
async function poll(args: string[]): Promise<PollOutput> {
  const child = spawn(PYTHON, [path.join(TOOLS, 'modbus_client.py'), 'poll', '--count', String(REGISTERS), ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  const out = await started(child);
  try {
    return JSON.parse(out) as PollOutput;
  } catch {
    throw new ValidationError('modbus_client.py', `printed no result: ${out}`);
  }
}

function summarise(baud: number, where: Run['path'], seconds: number, outputs: PollOutput[]): Run {
  const answered = outputs.reduce((n, o) => n + o.ok, 0);
  const failed = outputs.reduce((n, o) => n + o.requests - o.ok, 0);
  for (const o of outputs) if (o.mismatches.length > 0) throw new ValidationError('modbus bench', `an answer was not its request's: ${o.mismatches[0]}`);
  const rate = answered / seconds;
  // 8N1, as the binding says; a silent interval before the request and before the response.
  const timing = rtuTiming({ baudRate: baud, dataBits: 8, parity: 'PARITY_NONE', stopBits: 'STOP_BITS_ONE', flowControl: 'FLOW_CONTROL_NONE' }, baud);
  const gapSeconds = (2 * timing.silentMs) / 1000;
  const wire = (rate * (REQUEST_BYTES + RESPONSE_BYTES) * timing.charMs) / 1000;
  return {
    baud, path: where, clients: outputs.length, seconds, answered, failed,
    requestsPerSecond: Math.round(rate * 10) / 10,
    busUtilisation: Math.round(wire * 1000) / 1000,
    busUtilisationWithGaps: Math.round((wire + rate * gapSeconds) * 1000) / 1000,
  };
}

class Bus {
  private constructor(
    readonly device: string,
    private readonly socat: ChildProcess,
    private readonly slave: ChildProcess,
  ) {}

  static async create(dir: string, baud: number): Promise<Bus> {
    const device = path.join(dir, `ttyModbus${baud}`);
    const peer = path.join(dir, `slave${baud}`);
    const socat = spawn('socat', [`pty,raw,echo=0,link=${device}`, `pty,raw,echo=0,link=${peer}`], { stdio: 'ignore' });
    void trackChild(socat);
    await waitFor('socat to link the bus', () => fs.existsSync(device) && fs.existsSync(peer), 5000);
    const slave = spawn(PYTHON, [path.join(TOOLS, 'modbus_rtu_slave.py'), '--port', peer, '--baud', String(baud), '--units', UNITS.join(',')], { stdio: ['ignore', 'pipe', 'ignore'] });
    let ready = false;
    slave.stdout?.on('data', (c: Buffer) => (ready ||= c.toString().includes('ready')));
    void trackChild(slave);
    await waitFor('the pymodbus RTU slave', () => ready, 15_000);
    return new Bus(device, socat, slave);
  }

  stop(): void {
    this.slave.kill('SIGTERM');
    this.socat.kill('SIGTERM');
  }
}

async function benchBaud(dir: string, baud: number, counts: number[], seconds: number): Promise<Run[]> {
  const bus = await Bus.create(dir, baud);
  const runs: Run[] = [];
  try {
    progress(`${baud} baud: one pymodbus RTU client on the pty for ${seconds} s`);
    runs.push(summarise(baud, 'direct', seconds, [await poll(['--serial', bus.device, '--baud', String(baud), '--unit', '1', '--seconds', String(seconds)])]));
    progress(`${baud} baud: starting control plane, agent and sidecar`);
    const mesh = await SharedMesh.start(dir, path.join(dir, `ttyModbus${baud}`), bus.device, {
      protocol: 'modbus-tcp',
      policy: 'queueDepth: 256, perConsumerQueue: 4, commandTimeoutMs: 1000',
      serial: `baudRate: ${baud}, dataBits: 8, parity: none, stopBits: 1`,
    });
    try {
      await waitFor('the modbus-tcp device to answer', async () => (await poll(['--port', String(mesh.listenPort), '--seconds', '0.2'])).ok > 0, 30_000);
      for (const n of counts) {
        progress(`${baud} baud: ${n} pymodbus TCP client(s) through devicemesh for ${seconds} s`);
        const outputs = await Promise.all(
          Array.from({ length: n }, (_, i) => poll(['--port', String(mesh.listenPort), '--unit', String(UNITS[i % UNITS.length]), '--seconds', String(seconds)])),
        );
        runs.push(summarise(baud, 'mesh', seconds, outputs));
      }
    } finally {
      await mesh.stop();
    }
  } finally {
    bus.stop();
  }
  return runs;
}

function format(runs: Run[], machine: ReturnType<typeof machineInfo>): string {
  const rows = runs.map((r) => {
    const base = runs.find((b) => b.baud === r.baud && b.path === 'direct') as Run;
    const ratio = r.path === 'direct' ? '' : `${((r.requestsPerSecond / base.requestsPerSecond) * 100).toFixed(0)} % of direct`;
    return `${String(r.baud).padStart(6)}  ${(r.path === 'direct' ? 'direct RTU client' : `mesh, ${r.clients} client(s)`).padEnd(20)} ${r.requestsPerSecond.toFixed(1).padStart(9)} req/s  bus ${(r.busUtilisation * 100).toFixed(1).padStart(5)} % (${(r.busUtilisationWithGaps * 100).toFixed(1)} % with silent intervals)  ${r.failed} failed  ${ratio}`;
  });
  return [
    `Modbus RTU bus (pymodbus RTU server, units ${UNITS.join(', ')}, reads of ${REGISTERS} holding registers; ${REQUEST_BYTES} + ${RESPONSE_BYTES} bytes on the wire each)`,
    '  baud  path                  requests/s',
    ...rows.map((r) => `  ${r}`),
    '',
    'A socat pty does not pace bytes at the baud rate: the silent intervals (which the agent and pymodbus keep) are real, the character times are not,',
    'so utilisation above 100 % means the pty carried more than the wire could.',
    `machine: ${machine.cpus} × ${machine.cpuModel}, load ${machine.loadAverage.join(' ')}`,
  ].join('\n');
}

async function main(argv: string[]): Promise<number> {
  const startedAt = new Date();
  const args = benchArgs('modbus', argv, ['seconds'], startedAt);
  if (!args) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const { values, quick, out } = args;
  const seconds = secondsFlag('seconds', values.seconds ?? (quick ? '1' : '5'), 3600);
  if (!socatVersion()) {
    process.stderr.write('bench:modbus: socat is not installed (scripts/install-test-deps.sh): the bus is a socat pty pair\n');
    return 1;
  }
  const counts = quick ? [1, 4] : [1, 4, 16];
  cleanUpOnExit();
  const dir = makeTempDir('devicemesh-bench-modbus-');
  try {
    const runs: Run[] = [];
    for (const baud of [115200, 9600]) runs.push(...(await benchBaud(dir, baud, counts, seconds)));
    const machine = machineInfo();
    writeResults(out, { benchmark: 'modbus', startedAt: startedAt.toISOString(), machine, registersPerRead: REGISTERS, runs }, format(runs, machine));
    return 0;
  } catch (err) {
    process.stderr.write(`bench:modbus: ${errorMessage(err)}\n`);
    return 1;
  } finally {
    removeTempDir(dir);
  }
}

runMain('bench:modbus', main);
