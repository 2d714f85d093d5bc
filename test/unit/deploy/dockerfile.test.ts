import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import { builtinModules } from 'node:module';
import * as path from 'node:path';
import { REPO_ROOT } from '../../helpers/processes';

interface Stage {
  from: string;
  name: string;
  lines: string[];
}

/** The Dockerfile's stages: FROM image AS name, and the instructions under each. */
function stages(text: string): Stage[] {
  const out: Stage[] = [];
  const logical = text.replace(/\\\n/g, ' ').split('\n').map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#'));
  for (const line of logical) {
    const from = /^FROM\s+(\S+)(?:\s+AS\s+(\S+))?$/i.exec(line);
    if (from) out.push({ from: from[1] as string, name: from[2] ?? '', lines: [] });
    else out.at(-1)?.lines.push(line);
  }
  return out;
}

function jsFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    return e.isDirectory() ? jsFiles(p) : e.name.endsWith('.js') ? [p] : [];
  });
}

function packageName(specifier: string): string {
  const parts = specifier.split('/');
  return specifier.startsWith('@') ? parts.slice(0, 2).join('/') : (parts[0] as string);
}

/** The image: a build stage, then a slim runtime with the compiled processes and production dependencies only. */
describe('Dockerfile', () => {
  const dockerfile = fs.readFileSync(path.join(REPO_ROOT, 'Dockerfile'), 'utf8');
  const [build, runtime] = stages(dockerfile);
  const runtimeDirs = (runtime?.lines ?? [])
    .map((l) => /^COPY --from=build \/app\/dist\/(\S+) /.exec(l)?.[1])
    .filter((d): d is string => d !== undefined);

  it('has a build stage and a slim runtime stage that takes only what it needs from it', () => {
    assert.ok(build && runtime, 'two stages');
    assert.equal(build.name, 'build');
    assert.match(runtime.from, /-slim$/);
    assert.ok(build.lines.some((l) => /npm prune --omit=dev/.test(l)), 'the build stage prunes dev dependencies');
    assert.ok(!runtime.lines.some((l) => /npm (ci|install)/.test(l)), 'the runtime installs no packages from npm');
    assert.ok(runtime.lines.some((l) => /^COPY --from=build \/app\/node_modules node_modules$/.test(l)));
    assert.ok(runtime.lines.some((l) => /^USER node$/.test(l)), 'runs unprivileged');
    // dashboard: the control plane admin's built web page (static files, no code run by Node).
    assert.deepEqual(runtimeDirs.sort(), ['agent', 'cli', 'control-plane', 'dashboard', 'sidecar', 'src']);
  });

  it('the compiled processes in the runtime need nothing but Node builtins, production dependencies and each other', () => {
    // What `npm prune --omit=dev` keeps: the lock file's packages not marked dev-only.
    const lock = JSON.parse(fs.readFileSync(path.join(REPO_ROOT, 'package-lock.json'), 'utf8')) as { packages: Record<string, { dev?: boolean }> };
    const production = new Set(
      Object.entries(lock.packages)
        .filter(([p, info]) => p.startsWith('node_modules/') && !p.slice('node_modules/'.length).includes('node_modules/') && info.dev !== true)
        .map(([p]) => p.slice('node_modules/'.length)),
    );
    const builtins = new Set(builtinModules);
    const dist = path.join(REPO_ROOT, 'dist');
    const inRuntime = (file: string): boolean => runtimeDirs.some((d) => file.startsWith(path.join(dist, d) + path.sep));
    let checked = 0;
    for (const dir of runtimeDirs) {
      for (const file of jsFiles(path.join(dist, dir))) {
        for (const m of fs.readFileSync(file, 'utf8').matchAll(/require\("([^"]+)"\)/g)) {
          const spec = m[1] as string;
          checked++;
          if (spec.startsWith('.')) {
            const target = path.resolve(path.dirname(file), spec);
            assert.ok(inRuntime(target), `${path.relative(dist, file)} requires ${spec}, which the image leaves out`);
          } else if (!spec.startsWith('node:') && !builtins.has(spec)) {
            assert.ok(production.has(packageName(spec)), `${path.relative(dist, file)} requires ${spec}, which the pruned node_modules leaves out`);
          }
        }
      }
    }
    assert.ok(checked > 100, `only ${checked} requires found: is dist/ built?`);
  });

  it('the runtime installs no udev: the serial listing reads sysfs', () => {
    const installs = (runtime?.lines ?? []).filter((l) => /apt-get install/.test(l)).join(' ');
    assert.ok(installs.includes('gpiod'), 'the GPIO tools are installed');
    assert.ok(!/\budev\b/.test(installs), 'udev is not installed');
    assert.ok(fs.readFileSync(path.join(REPO_ROOT, 'dist', 'agent', 'driver-registry.js'), 'utf8').includes('listSysfsSerialPorts'), 'the agent lists serial ports from sysfs');
  });

  it('the image entrypoint is the devicemesh binary, which loads the compiled CLI', () => {
    assert.ok(runtime?.lines.includes('ENTRYPOINT ["node", "bin/devicemesh.js"]'));
    assert.match(fs.readFileSync(path.join(REPO_ROOT, 'bin', 'devicemesh.js'), 'utf8'), /require\('\.\.\/dist\/cli\/main\.js'\)/);
  });
});
