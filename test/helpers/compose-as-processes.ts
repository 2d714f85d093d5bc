import * as fs from 'node:fs';
import * as path from 'node:path';
import { parse } from 'yaml';
import { freePort, REPO_ROOT } from './processes';

/** One compose service as a process on this machine: the devicemesh binary's args, or its entrypoint's. */
export interface ServicePlan {
  name: string;
  args: string[];
  /** The service's own entrypoint (e.g. `sh -ec`), run with `args` in the image's working directory (here the repository); else the devicemesh binary. */
  entrypoint?: string[];
  /** A one-shot job (restart: on-failure), run until it succeeds rather than kept running. */
  job: boolean;
}

export interface ComposePlan {
  /** In dependency order. */
  services: ServicePlan[];
  /** A service's (container) port → the 127.0.0.1 port it has here. */
  port(containerPort: number): number;
}

interface ComposeService {
  image?: string;
  entrypoint?: string[];
  command?: string[];
  volumes?: string[];
  profiles?: string[];
  restart?: string;
  depends_on?: Record<string, unknown> | string[];
}

/**
 * Turns docker-compose.yml's devicemesh services (those of the default profile) into processes:
 * each service's host:port (service names, 0.0.0.0, 127.0.0.1) becomes 127.0.0.1 on a free port,
 * one per container port; bind-mounted config files are copied into `dir` with those addresses;
 * named volumes become directories in `dir`, one per volume, shared by the services that mount it.
 * Every process then shares one network namespace, as the workload's sidecar shares the workload's
 * in the compose file. `$$` in a command is compose's escape for `$`.
 */
export async function composeAsProcesses(dir: string, image: string): Promise<ComposePlan> {
  const compose = parse(fs.readFileSync(path.join(REPO_ROOT, 'docker-compose.yml'), 'utf8'), { merge: true }) as {
    services: Record<string, ComposeService>;
  };
  const names = Object.keys(compose.services);
  const ports = new Map<number, number>();
  const hostPort = new RegExp(`\\b(?:${['0\\.0\\.0\\.0', '127\\.0\\.0\\.1', ...names].join('|')}):(\\d{2,5})\\b`, 'g');
  const collect = (text: string): void => {
    for (const m of text.matchAll(hostPort)) ports.set(Number(m[1]), 0);
  };
  const selected = Object.entries(compose.services).filter(([, s]) => s.image === image && s.profiles === undefined);
  for (const [, s] of selected) {
    collect((s.command ?? []).join(' '));
    for (const v of s.volumes ?? []) if (v.startsWith('./')) collect(fs.readFileSync(path.join(REPO_ROOT, v.split(':')[0] as string), 'utf8'));
  }
  for (const p of ports.keys()) ports.set(p, await freePort());
  const localize = (text: string, paths: Map<string, string>): string => {
    let out = text.replace(hostPort, (_, p: string) => `127.0.0.1:${ports.get(Number(p))}`);
    // Longest mount point first: /var/lib/devicemesh must not rewrite the start of /var/lib/devicemesh-join.
    for (const [from, to] of [...paths].sort(([a], [b]) => b.length - a.length)) out = out.split(from).join(to);
    return out;
  };

  const plans = new Map<string, ServicePlan>();
  for (const [name, s] of selected) {
    const paths = new Map<string, string>();
    for (const v of s.volumes ?? []) {
      const [source, target] = v.split(':') as [string, string];
      const local = source.startsWith('./') ? path.join(dir, name, path.basename(source)) : path.join(dir, 'volumes', source);
      if (!source.startsWith('./')) fs.mkdirSync(local, { recursive: true });
      paths.set(target, local);
    }
    for (const v of s.volumes ?? []) {
      const [source, target] = v.split(':') as [string, string];
      if (!source.startsWith('./')) continue;
      fs.mkdirSync(path.dirname(paths.get(target) as string), { recursive: true });
      fs.writeFileSync(paths.get(target) as string, localize(fs.readFileSync(path.join(REPO_ROOT, source), 'utf8'), paths));
    }
    plans.set(name, {
      name,
      args: (s.command ?? []).map((a) => localize(a.split('$$').join('$'), paths)),
      job: s.restart === 'on-failure',
      ...(s.entrypoint ? { entrypoint: s.entrypoint } : {}),
    });
  }

  // Dependencies first, as compose starts them.
  const ordered: ServicePlan[] = [];
  const visit = (name: string): void => {
    const plan = plans.get(name);
    if (!plan || ordered.includes(plan)) return;
    const deps = compose.services[name]?.depends_on ?? [];
    for (const d of Array.isArray(deps) ? deps : Object.keys(deps)) visit(d);
    ordered.push(plan);
  };
  for (const name of plans.keys()) visit(name);
  return {
    services: ordered,
    port: (containerPort) => ports.get(containerPort) ?? fail(`no service address uses port ${containerPort}`),
  };
}

function fail(message: string): never {
  throw new Error(message);
}
