/**
 * bench/cli-startup: how long `devicemesh --help`, `get endpoints` and `apply -f` take from
 * start to exit, wall and CPU, against a running control plane in the secure default, beside
 * `node -e 0`; 20 runs of each, taken in turn, after one untimed run of each with the memory
 * probe, which says what it loaded. Prints a table and writes bench/results/cli-startup-<timestamp>.json. See
 * docs/benchmarks.md.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { errorMessage } from '../../src/errors';
import { clientCredentialEnv } from '../../src/security/client-credential-files';
import { benchArgs, integerFlag } from '../common/bench-options';
import { BIN, exitedChildrenCpuSeconds, freePort, machineInfo, runMain, writeResults } from '../common/bench-run';
import { startSecureControlPlane } from '../common/mesh-cli';
import { Child, cleanUpOnExit, makeTempDir, removeTempDir } from '../data-path/children';
import { bindingYaml } from '../data-path/mesh';
import { percentiles } from '../sharing/stats';
import type { ProbeSnapshot } from '../footprint/memory-probe';
import { readProbe, probeEnv } from '../footprint/probe';
import { BASELINE, type CliStartupReport, type CommandTiming, formatReport, targetsOf } from './report';

const USAGE = [
  'usage: npm run bench:cli -- [flags]   (or node dist/bench/cli-startup/main.js [flags])',
  '',
  '  --runs N      timed runs of each command (default 20)',
  '  --quick       smoke run: 3 runs',
  '  --out FILE    JSON results (default bench/results/cli-startup-<timestamp>.json)',
].join('\n');

interface Command {
  name: string;
  argv: string[];
}

interface Run {
  pid: number;
  wallMs: number;
  cpuMs: number;
}

function progress(message: string): void {
  process.stderr.write(`[bench] ${message}\n`);
}

/** Runs `node argv` to its end; a non-zero exit is an error with its stderr. */
function runOnce(argv: readonly string[], env: NodeJS.ProcessEnv): Promise<Run> {
  return new Promise((resolve, reject) => {
    const cpuBefore = exitedChildrenCpuSeconds();
    const started = process.hrtime.bigint();
    const child = spawn(process.execPath, argv, { stdio: ['ignore', 'ignore', 'pipe'], env });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (text: string) => (stderr += text));
    child.once('error', reject);
    child.once('exit', (code, signal) => {
      const wallMs = Number(process.hrtime.bigint() - started) / 1e6;
      if (code !== 0) reject(new Error(`node ${argv.join(' ')} exited ${code ?? signal}: ${stderr.trim()}`));
      else resolve({ pid: child.pid as number, wallMs, cpuMs: (exitedChildrenCpuSeconds() - cpuBefore) * 1000 });
    });
  });
}

export async function main(argv: string[]): Promise<number> {
  const startedAt = new Date();
  const args = benchArgs('cli-startup', argv, ['runs'], startedAt);
  if (!args) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const runs = integerFlag('runs', args.values.runs ?? (args.quick ? '3' : '20'), 1, 10_000);
  cleanUpOnExit();
  const dir = makeTempDir('devicemesh-bench-cli-');
  const dataDir = path.join(dir, 'data');
  const [grpcPort, adminPort, appPort] = await Promise.all([freePort(), freePort(), freePort()]);
  const cp = `127.0.0.1:${grpcPort}`;
  const start = (name: string, childArgs: string[]): Child => Child.spawn(name, process.execPath, [BIN, ...childArgs], path.join(dir, `${name}.log`));
  let controlPlane: Child | undefined;
  try {
    progress('starting a control plane');
    ({ controlPlane } = await startSecureControlPlane(start, { grpc: cp, admin: `127.0.0.1:${adminPort}` }, dataDir, { hostId: 'bench-gw', workloadId: 'bench-app' }));
    const doc = path.join(dir, 'binding.yaml');
    fs.writeFileSync(doc, bindingYaml('/dev/ttyBENCH0', { protocol: 'raw', port: appPort }));
    const commands: Command[] = [
      { name: BASELINE, argv: ['-e', '0'] },
      { name: 'devicemesh --help', argv: [BIN, '--help'] },
      { name: 'devicemesh get endpoints', argv: [BIN, 'get', 'endpoints', '--control-plane', cp] },
      { name: 'devicemesh apply -f binding.yaml', argv: [BIN, 'apply', '-f', doc, '--control-plane', cp] },
    ];
    const env = { ...process.env, ...clientCredentialEnv(dataDir) };
    const probeDir = path.join(dir, 'probe');
    const probedEnv = probeEnv(probeDir, true, env);
    // The probed run of each comes first, untimed: it also leaves every file the timed runs read in the page cache.
    const probes = new Map<string, ProbeSnapshot>();
    for (const c of commands) probes.set(c.name, readProbe(probeDir, (await runOnce(c.argv, probedEnv)).pid));
    const timed = new Map<string, Run[]>(commands.map((c) => [c.name, []]));
    for (let i = 0; i < runs; i++) {
      progress(`run ${i + 1}/${runs} of each command`);
      for (const c of commands) timed.get(c.name)?.push(await runOnce(c.argv, env));
    }
    const timings: CommandTiming[] = [];
    for (const c of commands) {
      const probed = probes.get(c.name) as ProbeSnapshot;
      const done = timed.get(c.name) ?? [];
      timings.push({
        name: c.name,
        argv: c.argv.map((a) => (a === BIN ? 'bin/devicemesh.js' : a)),
        wallMs: percentiles(done.map((r) => r.wallMs)),
        cpuMs: percentiles(done.map((r) => r.cpuMs), 0),
        modules: probed.modules,
        protoFiles: probed.protoFiles.map((f) => path.relative(process.cwd(), f)),
        rssMB: probed.memoryMB.rss,
      });
    }
    const report: CliStartupReport = {
      benchmark: 'cli-startup',
      startedAt: startedAt.toISOString(),
      machine: machineInfo(),
      options: { runs, quick: args.quick },
      commands: timings,
      targets: targetsOf(timings),
    };
    writeResults(args.out, report, formatReport(report));
    return 0;
  } catch (err) {
    process.stderr.write(`bench:cli: ${errorMessage(err)}\n`);
    return 1;
  } finally {
    await controlPlane?.stop();
    removeTempDir(dir);
  }
}

if (require.main === module) runMain('bench:cli', main);
