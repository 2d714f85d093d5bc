/**
 * bench/control-plane: the real control plane as its own process, a register of endpoints, and
 * N sidecars on the project's own AdsClient in forked workers. Measures how long a change takes
 * to be ACKed by the sidecars it affects, and what the control plane costs in memory and CPU.
 * Prints a table and writes bench/results/control-plane.json. See docs/benchmarks.md.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { errorMessage } from '../../src/errors';
import type { AdsProtocol } from '../../src/xds/protocols';
import { machineInfo, runMain, writeResults } from '../common/bench-run';
import { protocolServed } from './discovery-probe';
import { monotonicMs } from './messages';
import {
  AGENT_METADATA,
  apply,
  BAUD_RATES,
  binding,
  controlPlaneClient,
  HOST_ID,
  INITIAL_BYTES_PER_SECOND,
  type Registration,
  registerEndpoints,
  sharedPolicy,
  workloadId,
} from './mesh';
import { type BenchOptions, parseOptions, USAGE } from './options';
import { cleanUpOnExit, ControlPlaneProcess, makeTempDir, ProxyWorker, removeTempDir } from './processes';
import { type BenchReport, distribution, type FailedRun, formatReport, isFailed, round, type RunResult, targetsOf } from './report';

/** Sidecars per forked worker: a few workers share the two cores with the control plane. */
const PROXIES_PER_WORKER = 250;
/** Registrations in flight: enough to keep the control plane busy, bounded so it is not flooded. */
const REGISTER_CONCURRENCY = 32;
const ONE_CHANGE_TIMEOUT_MS = 30_000;
const FANOUT_TIMEOUT_MS = 120_000;
const MB = 1024 * 1024;

function progress(message: string): void {
  process.stderr.write(`[bench] ${message}\n`);
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

interface Prepared {
  /** The data directory with the endpoints registered, copied for every run. */
  dataDir: string;
  registration: Registration;
  protocols: AdsProtocol[];
  delta: BenchReport['delta'];
}

/** Registers the endpoints once, and finds out which of the requested protocols this control plane serves. */
async function prepare(root: string, options: BenchOptions): Promise<Prepared> {
  const dataDir = path.join(root, 'seed');
  fs.mkdirSync(dataDir);
  const cp = await ControlPlaneProcess.start(dataDir, path.join(root, 'seed-control-plane.log'));
  const client = controlPlaneClient(cp.grpcAddress);
  try {
    const protocols: AdsProtocol[] = [];
    let delta: BenchReport['delta'] = { available: true, note: '' };
    for (const p of options.protocols) {
      const served = await protocolServed(cp.grpcAddress, p);
      if (served === p) protocols.push(p);
      else delta = { available: false, note: `delta discovery is not available: an AdsClient asked for delta fell back to ${served} with this control plane; delta not run` };
    }
    if (!delta.available) progress(delta.note);
    progress(`registering ${options.endpoints} endpoints`);
    const started = monotonicMs();
    const registration = await registerEndpoints(client, options.endpoints, REGISTER_CONCURRENCY, (done) =>
      progress(`registered ${done}/${options.endpoints} endpoints (${((monotonicMs() - started) / 1000).toFixed(1)} s)`),
    );
    return { dataDir, registration, protocols, delta };
  } finally {
    client.close();
    await cp.stop();
  }
}

/**
 * One configuration on a fresh control-plane process started on a copy of the registered data
 * directory (so each run's memory peak is its own): agent, bindings, sidecars, an idle window,
 * the one-binding samples, the all-proxy samples.
 */
async function run(protocol: AdsProtocol, n: number, seedDir: string, root: string, options: BenchOptions): Promise<RunResult | FailedRun> {
  const label = `${protocol}, ${n} proxies`;
  const dir = path.join(root, `${protocol}-${n}`);
  const dataDir = path.join(dir, 'data');
  fs.cpSync(seedDir, dataDir, { recursive: true });
  const cp = await ControlPlaneProcess.start(dataDir, path.join(dir, 'control-plane.log'));
  const client = controlPlaneClient(cp.grpcAddress);
  const workers: ProxyWorker[] = [];
  let maxRss = 0;
  const sampler = setInterval(() => {
    try {
      maxRss = Math.max(maxRss, cp.usage().rssBytes);
    } catch {
      // The process is gone; the run fails on its next call and says so.
    }
  }, 250);
  try {
    const agent = new ProxyWorker('agent worker');
    workers.push(agent);
    await agent.start(cp.grpcAddress, protocol, [{ id: HOST_ID, kind: 'agent', metadata: AGENT_METADATA }], 30_000);

    const baud: number[] = Array.from({ length: n }, () => BAUD_RATES[0]);
    const applyStarted = monotonicMs();
    await apply(client, baud.map((b, i) => binding(i, b)), [sharedPolicy(INITIAL_BYTES_PER_SECOND)]);
    const applyBindingsMs = monotonicMs() - applyStarted;

    progress(`${label}: connecting sidecars`);
    const owner: ProxyWorker[] = [];
    const starts: Promise<number>[] = [];
    for (let first = 0; first < n; first += PROXIES_PER_WORKER) {
      const worker = new ProxyWorker(`sidecar worker ${workers.length}`);
      workers.push(worker);
      const ids = Array.from({ length: Math.min(PROXIES_PER_WORKER, n - first) }, (_, k) => first + k);
      for (const i of ids) owner[i] = worker;
      starts.push(worker.start(cp.grpcAddress, protocol, ids.map((i) => ({ id: workloadId(i), kind: 'sidecar' })), 60_000 + n * 60));
    }
    const connectAllMs = Math.max(...(await Promise.all(starts)));

    // Connected and quiet: the cost of holding N streams (keepalives included).
    const idleWindowMs = options.quick ? 2000 : 5000;
    const idleFrom = cp.usage();
    const idleStarted = monotonicMs();
    await sleep(idleWindowMs);
    const idleTo = cp.usage();
    const idleCpu = ((idleTo.cpuSeconds - idleFrom.cpuSeconds) * 1000 * 100) / (monotonicMs() - idleStarted);

    progress(`${label}: ${options.samples} one-binding changes`);
    const changesFrom = cp.usage();
    const changesStarted = monotonicMs();
    const ackMs: number[] = [];
    const applyMs: number[] = [];
    for (let k = 0; k < options.samples; k++) {
      // Spread over the sidecars, hence over the workers.
      const i = Math.floor((k * n) / options.samples) % n;
      const baudRate = baud[i] === BAUD_RATES[0] ? BAUD_RATES[1] : BAUD_RATES[0];
      baud[i] = baudRate;
      const since = monotonicMs();
      const [, [ackedAt]] = await Promise.all([
        apply(client, [binding(i, baudRate)], []).then(() => applyMs.push(monotonicMs() - since)),
        (owner[i] as ProxyWorker).awaitChange(since, [workloadId(i)], { baudRate }, ONE_CHANGE_TIMEOUT_MS),
      ]);
      ackMs.push((ackedAt as number) - since);
    }

    progress(`${label}: ${options.fanoutSamples} changes to all proxies`);
    const lastAckMs: number[] = [];
    const sidecarWorkers = workers.slice(1);
    for (let k = 1; k <= options.fanoutSamples; k++) {
      const bytesPerSecond = INITIAL_BYTES_PER_SECOND + k;
      const since = monotonicMs();
      const [, ...perWorker] = await Promise.all([
        apply(client, [], [sharedPolicy(bytesPerSecond)]),
        ...sidecarWorkers.map((w) => w.awaitChange(since, 'all', { bytesPerSecond: String(bytesPerSecond) }, FANOUT_TIMEOUT_MS)),
      ]);
      lastAckMs.push(Math.max(...perWorker.flat()) - since);
    }
    const changesTo = cp.usage();
    const changesCpu = ((changesTo.cpuSeconds - changesFrom.cpuSeconds) * 1000 * 100) / (monotonicMs() - changesStarted);

    return {
      protocol,
      proxies: n,
      endpoints: options.endpoints,
      applyBindingsMs: round(applyBindingsMs),
      connectAllMs: round(connectAllMs),
      oneBindingChangeToAckMs: distribution(ackMs),
      oneBindingApplyRpcMs: distribution(applyMs),
      allProxiesChangeToLastAckMs: distribution(lastAckMs),
      controlPlane: {
        rssMB: {
          connectedIdle: round(idleTo.rssBytes / MB),
          maxSampled: round(Math.max(maxRss, changesTo.rssBytes) / MB),
          peak: round(changesTo.peakRssBytes / MB),
        },
        cpuPercentOfOneCore: { idle: round(idleCpu), changes: round(changesCpu) },
        idleWindowMs,
      },
    };
  } catch (err) {
    return { protocol, proxies: n, endpoints: options.endpoints, error: `${errorMessage(err)} (control plane log: ${cp.logTail(3)})` };
  } finally {
    clearInterval(sampler);
    await Promise.all(workers.map((w) => w.stop()));
    client.close();
    await cp.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

export async function main(argv: string[]): Promise<number> {
  let options: BenchOptions | undefined;
  try {
    options = parseOptions(argv);
  } catch (err) {
    process.stderr.write(`bench:control-plane: ${errorMessage(err)}\n`);
    return 2;
  }
  if (!options) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  cleanUpOnExit();
  const startedAt = new Date();
  const root = makeTempDir('devicemesh-bench-');
  try {
    const { dataDir, registration, protocols, delta } = await prepare(root, options);
    if (protocols.length === 0) throw new Error(delta.note);
    const runs: (RunResult | FailedRun)[] = [];
    for (const n of options.proxies) {
      for (const protocol of protocols) {
        progress(`${protocol}, ${n} proxies: starting`);
        runs.push(await run(protocol, n, dataDir, root, options));
      }
    }
    const { out, ...shown } = options;
    const report: BenchReport = {
      benchmark: 'control-plane',
      startedAt: startedAt.toISOString(),
      finishedAt: new Date().toISOString(),
      command: ['node', path.relative(process.cwd(), process.argv[1] ?? 'dist/bench/control-plane/main.js'), ...argv].join(' '),
      machine: machineInfo(),
      options: { ...shown, protocols },
      delta,
      registration,
      runs,
      targets: runs.flatMap((r) => (isFailed(r) ? [] : targetsOf(r))),
    };
    writeResults(out, report, formatReport(report));
    return runs.some(isFailed) ? 1 : 0;
  } finally {
    removeTempDir(root);
  }
}

if (require.main === module) runMain('bench:control-plane', main);
