import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { freePort, waitFor } from './processes';

/** True when Debian's etcd-server is installed; tests that need it say so and skip otherwise. */
export function haveEtcd(): boolean {
  return spawnSync('etcd', ['--version'], { stdio: 'ignore' }).status === 0;
}

/** A single-member etcd of one test: its own data directory in a temp dir, its own free ports. */
export class EtcdServer {
  private constructor(
    readonly endpoint: string,
    private readonly dir: string,
    private readonly proc: ChildProcess,
  ) {}

  static async start(): Promise<EtcdServer> {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'devicemesh-etcd-'));
    const [client, peer] = [await freePort(), await freePort()];
    const proc = spawn(
      'etcd',
      [
        '--name', 'test',
        '--data-dir', path.join(dir, 'data'),
        '--listen-client-urls', `http://127.0.0.1:${client}`,
        '--advertise-client-urls', `http://127.0.0.1:${client}`,
        '--listen-peer-urls', `http://127.0.0.1:${peer}`,
        '--initial-advertise-peer-urls', `http://127.0.0.1:${peer}`,
        '--initial-cluster', `test=http://127.0.0.1:${peer}`,
        '--log-level', 'error',
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    let stderr = '';
    proc.stderr?.on('data', (c: Buffer) => (stderr += c.toString()));
    const server = new EtcdServer(`http://127.0.0.1:${client}`, dir, proc);
    try {
      await waitFor('etcd to accept clients', async () => {
        if (proc.exitCode !== null) throw new Error(`etcd exited ${proc.exitCode}: ${stderr.slice(-500)}`);
        return new Promise<boolean>((resolve) => {
          const s = net.connect(client, '127.0.0.1', () => {
            s.destroy();
            resolve(true);
          });
          s.on('error', () => resolve(false));
        });
      }, 15_000);
    } catch (err) {
      await server.stop();
      throw err;
    }
    return server;
  }

  async stop(): Promise<void> {
    if (this.proc.exitCode === null && this.proc.signalCode === null) {
      const exited = new Promise((r) => this.proc.once('exit', r));
      this.proc.kill('SIGTERM');
      await exited;
    }
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}
