import * as fs from 'node:fs';
import * as path from 'node:path';
import type { ProbeSnapshot } from './memory-probe';
import { waitFor } from '../data-path/children';

const PROBE = path.join(__dirname, 'memory-probe.js');

/** The environment that loads the memory probe into every Node process started with it, writing into `dir`. */
export function probeEnv(dir: string, atExit: boolean, env: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  fs.mkdirSync(dir, { recursive: true });
  const nodeOptions = [env.NODE_OPTIONS, `--require ${PROBE}`].filter((o) => o).join(' ');
  return { ...env, NODE_OPTIONS: nodeOptions, DEVICEMESH_PROBE_DIR: dir, ...(atExit ? { DEVICEMESH_PROBE_AT_EXIT: '1' } : {}) };
}

/** What the probe wrote for `pid` at its exit (or its last SIGUSR2). */
export function readProbe(dir: string, pid: number): ProbeSnapshot {
  return JSON.parse(fs.readFileSync(path.join(dir, `${pid}.json`), 'utf8')) as ProbeSnapshot;
}

/** Asks the live process `pid` for a fresh snapshot (SIGUSR2) and waits for it. */
export async function askProbe(dir: string, pid: number): Promise<ProbeSnapshot> {
  const file = path.join(dir, `${pid}.json`);
  fs.rmSync(file, { force: true });
  process.kill(pid, 'SIGUSR2');
  await waitFor(`the memory probe of process ${pid}`, () => fs.existsSync(file), 10_000);
  return readProbe(dir, pid);
}
