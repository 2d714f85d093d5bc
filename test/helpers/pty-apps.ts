import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as readline from 'node:readline';
import { stopChild, waitFor } from './processes';

/** The termios of a tty as `stty -F PATH -a` prints it: speed and the flag words. */
export function sttyOf(path: string): { speed: number; flags: Set<string> } {
  const out = spawnSync('stty', ['-F', path, '-a'], { encoding: 'utf8' });
  if (out.status !== 0) throw new Error(`stty -F ${path}: ${out.stderr}`);
  const speed = /speed (\d+) baud/.exec(out.stdout);
  return { speed: Number(speed?.[1] ?? -1), flags: new Set(out.stdout.split(/[\s;]+/)) };
}

/** A "physical" serial device made by socat: a pty at `link` whose every byte is echoed by cat. */
export class EchoPtyDevice {
  private constructor(
    readonly link: string,
    private readonly proc: ChildProcess,
  ) {}

  static async plug(link: string): Promise<EchoPtyDevice> {
    const proc = spawn('socat', [`pty,raw,echo=0,link=${link}`, 'EXEC:cat'], { stdio: 'ignore' });
    await waitFor(`socat links ${link}`, () => fs.existsSync(link), 5000);
    return new EchoPtyDevice(link, proc);
  }

  /** Pulls the device: socat exits, the link goes, the agent's open port hangs up. */
  async pull(): Promise<void> {
    await stopChild(this.proc);
  }
}

/** A client of a pty's control socket (`<path>.control`): one request line, one answer line. */
export class PtyControlClient {
  readonly events: string[] = [];
  private readonly answers: Array<(line: string) => void> = [];

  private constructor(private readonly socket: net.Socket) {
    readline.createInterface({ input: socket }).on('line', (line) => {
      if (line.startsWith('event ')) this.events.push(line);
      else this.answers.shift()?.(line);
    });
  }

  static connect(path: string): Promise<PtyControlClient> {
    const socket = net.connect(path);
    return new Promise((resolve, reject) => {
      socket.once('error', reject);
      socket.once('connect', () => {
        socket.off('error', reject);
        resolve(new PtyControlClient(socket));
      });
    });
  }

  request(line: string): Promise<string> {
    return new Promise((resolve) => {
      this.answers.push(resolve);
      this.socket.write(`${line}\n`);
    });
  }

  /** Raw bytes, for malformed input. */
  send(bytes: string): void {
    this.socket.write(bytes);
  }

  next(): Promise<string> {
    return new Promise((resolve) => this.answers.push(resolve));
  }

  close(): void {
    this.socket.destroy();
  }
}
