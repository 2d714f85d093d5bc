import * as fs from 'node:fs';
import * as path from 'node:path';
import { Child, waitFor } from '../data-path/children';
import type { DeviceChildMessage } from '../common/device-child';

const AT_DEVICE = path.join(__dirname, 'at-device.js');

/** A socat pty pair with the AT device on its far end; `device` is the end the consumers' side opens. */
export class PtyAtDevice {
  private constructor(
    readonly device: string,
    private readonly socat: Child,
    private readonly at: Child,
  ) {}

  /** The peer link is named so that a --watch of `device`'s glob does not see it. */
  static async create(dir: string, deviceName: string): Promise<PtyAtDevice> {
    const device = path.join(dir, deviceName);
    const peer = path.join(dir, `at-end-of-${deviceName}`);
    const socat = Child.spawn('socat', 'socat', [`pty,raw,echo=0,link=${device}`, `pty,raw,echo=0,link=${peer}`], path.join(dir, 'socat.log'));
    let at: Child | undefined;
    try {
      await waitFor(`socat to link ${device} and ${peer}`, () => fs.existsSync(device) && fs.existsSync(peer), 5000, () => socat.exitError());
      const started = Child.fork('at-device', AT_DEVICE, [peer], path.join(dir, 'at-device.log'));
      at = started;
      await new Promise<void>((resolve, reject) => {
        started.process.once('message', (m: DeviceChildMessage) => (m.type === 'ready' ? resolve() : reject(new Error(`AT device: ${m.message}`))));
        started.process.once('exit', (code) => reject(new Error(`AT device exited (${code}): ${started.logTail()}`)));
      });
      return new PtyAtDevice(device, socat, started);
    } catch (err) {
      await at?.stop();
      await socat.stop();
      throw err;
    }
  }

  async close(): Promise<void> {
    await this.at.stop();
    await this.socat.stop();
  }
}
