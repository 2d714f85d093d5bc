import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Child, waitFor } from './children';
import type { DeviceChildMessage } from '../common/device-child';

const ECHO_DEVICE = path.join(__dirname, 'echo-device.js');

/** socat's version line, or undefined when socat is not installed. */
export function socatVersion(): string | undefined {
  const r = spawnSync('socat', ['-V'], { encoding: 'utf8' });
  if (r.status !== 0) return undefined;
  return /socat version (\S+)/.exec(r.stdout)?.[1] ?? 'unknown';
}

/**
 * A fresh pseudo-terminal pair made by socat, with the echo device on its far end: `device` is
 * the end a path opens, as it would open /dev/ttyUSB0.
 */
export class PtyEcho {
  private constructor(
    readonly device: string,
    private readonly socat: Child,
    private readonly echo: Child,
  ) {}

  /** `device` and its peer link are made in `dir`; the peer is named so that a --watch of `device`'s glob does not see it. */
  static async create(dir: string, deviceName: string): Promise<PtyEcho> {
    const device = path.join(dir, deviceName);
    const peer = path.join(dir, `echo-end-of-${deviceName}`);
    const socat = Child.spawn('socat', 'socat', [`pty,raw,echo=0,link=${device}`, `pty,raw,echo=0,link=${peer}`], path.join(dir, 'socat.log'));
    let echo: Child | undefined;
    try {
      await waitFor(`socat to link ${device} and ${peer}`, () => fs.existsSync(device) && fs.existsSync(peer), 5000, () => socat.exitError());
      const started = Child.fork('echo', ECHO_DEVICE, [peer], path.join(dir, 'echo.log'));
      echo = started;
      await new Promise<void>((resolve, reject) => {
        started.process.once('message', (m: DeviceChildMessage) => (m.type === 'ready' ? resolve() : reject(new Error(`echo device: ${m.message}`))));
        started.process.once('exit', (code) => reject(new Error(`echo device exited (${code}): ${started.logTail()}`)));
      });
      return new PtyEcho(device, socat, started);
    } catch (err) {
      await echo?.stop();
      await socat.stop();
      throw err;
    }
  }

  /** The processes every path shares, for the CPU figures. */
  processes(): Child[] {
    return [this.socat, this.echo];
  }

  async close(): Promise<void> {
    await this.echo.stop();
    await this.socat.stop();
  }
}
