import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import { stopChild, waitFor } from './processes';

/** True when socat is on this machine; tests that need it say so and skip otherwise. */
export function haveSocat(): boolean {
  return spawnSync('socat', ['-V'], { stdio: 'ignore' }).status === 0;
}

/** A pseudo-terminal pair made by socat, reachable through two symlinks. */
export class PtyPair {
  private constructor(
    readonly device: string,
    readonly peer: string,
    private readonly proc: ChildProcess,
  ) {}

  static async create(device: string, peer: string): Promise<PtyPair> {
    const proc = spawn('socat', [`pty,raw,echo=0,link=${device}`, `pty,raw,echo=0,link=${peer}`], { stdio: 'ignore' });
    await waitFor(`socat links ${device} and ${peer}`, () => fs.existsSync(device) && fs.existsSync(peer), 5000);
    return new PtyPair(device, peer, proc);
  }

  /** Pulls the "device" out: socat exits and removes both links. */
  async remove(): Promise<void> {
    await stopChild(this.proc);
  }
}
