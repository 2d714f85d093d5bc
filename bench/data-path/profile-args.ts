import * as fs from 'node:fs';
import * as path from 'node:path';

/** How a profiled sidecar or agent is started (`bench:data-path --profile DIR`; profile.ts reads back what it leaves). */
const PROBE = path.join(__dirname, 'loop-probe.js');

export function profileNodeArgs(dir: string, name: string): string[] {
  fs.mkdirSync(dir, { recursive: true });
  // Sampled every 100 µs, not the default 1 ms: a round trip costs each process ~100–200 µs of CPU.
  return ['--cpu-prof', '--cpu-prof-interval=100', `--cpu-prof-dir=${dir}`, `--cpu-prof-name=${name}.cpuprofile`, '--trace-gc', '--require', PROBE];
}

export function profileEnv(dir: string, name: string): NodeJS.ProcessEnv {
  return { DEVICEMESH_BENCH_PROFILE_DIR: dir, DEVICEMESH_BENCH_PROBE_NAME: name };
}
