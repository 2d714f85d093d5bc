import * as path from 'node:path';
import { parseArgs } from 'node:util';
import type { AdsProtocol } from '../../src/xds/protocols';
import { REPO_ROOT } from './processes';

export interface BenchOptions {
  /** Sidecar counts, one configuration each. */
  proxies: number[];
  /** One-binding changes per configuration. */
  samples: number;
  /** Changes to every sidecar per configuration. */
  fanoutSamples: number;
  endpoints: number;
  protocols: AdsProtocol[];
  quick: boolean;
  out: string;
}

export const USAGE = `usage: npm run bench:control-plane -- [flags]   (or node dist/bench/control-plane/main.js [flags])

  --proxies LIST          sidecar counts to run, comma-separated (default 100,1000)   [DEVICEMESH_BENCH_PROXIES]
  --samples N             one-binding changes per run (default 200)                    [DEVICEMESH_BENCH_SAMPLES]
  --fanout-samples N      changes to every sidecar per run (default 5)                 [DEVICEMESH_BENCH_FANOUT_SAMPLES]
  --endpoints N           endpoints in the register (default 10000)                    [DEVICEMESH_BENCH_ENDPOINTS]
  --protocols LIST        delta,sotw or one of them (default delta,sotw)               [DEVICEMESH_BENCH_PROTOCOLS]
  --quick                 smoke run: 20 proxies, 20 samples, 3 fan-outs, 1000 endpoints [DEVICEMESH_BENCH_QUICK=1]
  --out FILE              JSON results (default bench/results/control-plane.json)     [DEVICEMESH_BENCH_OUT]`;

const FULL = { proxies: '100,1000', samples: '200', 'fanout-samples': '5', endpoints: '10000' };
const QUICK = { proxies: '20', samples: '20', 'fanout-samples': '3', endpoints: '1000' };
/** Listen ports are 20000 + i. */
const MAX_PROXIES = 45_000;

function integer(name: string, value: string, min: number, max: number): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || n < min || n > max) throw new Error(`--${name}: "${value}" is not an integer from ${min} to ${max}`);
  return n;
}

/** Flags win over DEVICEMESH_BENCH_* variables, which win over the (quick or full) defaults. Undefined means --help. */
export function parseOptions(argv: string[], env: NodeJS.ProcessEnv = process.env): BenchOptions | undefined {
  const { values } = parseArgs({
    args: argv,
    options: {
      proxies: { type: 'string' },
      samples: { type: 'string' },
      'fanout-samples': { type: 'string' },
      endpoints: { type: 'string' },
      protocols: { type: 'string' },
      quick: { type: 'boolean' },
      out: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
    allowPositionals: false,
  });
  if (values.help) return undefined;
  const fromEnv = (name: string): string | undefined => env[`DEVICEMESH_BENCH_${name.toUpperCase().replace(/-/g, '_')}`] || undefined;
  const quick = values.quick ?? ['1', 'true', 'yes'].includes(fromEnv('quick') ?? '');
  const defaults: Record<string, string> = quick ? QUICK : FULL;
  const pick = (name: 'proxies' | 'samples' | 'fanout-samples' | 'endpoints' | 'protocols' | 'out', fallback: string): string =>
    values[name] ?? fromEnv(name) ?? defaults[name] ?? fallback;

  const proxies = pick('proxies', '').split(',').map((v) => integer('proxies', v.trim(), 1, MAX_PROXIES));
  const endpoints = integer('endpoints', pick('endpoints', ''), 1, 1_000_000);
  if (Math.max(...proxies) > endpoints) throw new Error(`--endpoints ${endpoints} is fewer than --proxies ${Math.max(...proxies)}: each sidecar binds its own device`);
  const protocols = [...new Set(pick('protocols', 'delta,sotw').split(',').map((p) => p.trim()))];
  for (const p of protocols) if (p !== 'delta' && p !== 'sotw') throw new Error(`--protocols: "${p}" is not one of delta, sotw`);
  return {
    proxies,
    samples: integer('samples', pick('samples', ''), 1, 100_000),
    fanoutSamples: integer('fanout-samples', pick('fanout-samples', ''), 1, 1000),
    endpoints,
    protocols: protocols as AdsProtocol[],
    quick,
    out: path.resolve(pick('out', path.join(REPO_ROOT, 'bench', 'results', 'control-plane.json'))),
  };
}
