import { type ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import type { DeviceHandle } from '../../../agent/drivers/device-driver';
import { waitFor } from '../../unit/agent/helpers';

/** A socat pty pair: the device at `device`, its far end (the "hardware") at `peer`. */
export async function startSocat(device: string, peer: string): Promise<ChildProcess> {
  const child = spawn('socat', [`pty,raw,echo=0,link=${device}`, `pty,raw,echo=0,link=${peer}`], { stdio: 'ignore' });
  await waitFor(() => fs.existsSync(device) && fs.existsSync(peer), 'socat to create the pty pair');
  return child;
}

export async function stopSocat(child: ChildProcess | undefined): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill();
  await exited;
}

/**
 * Makes the far end echo every byte and keep a copy. It reads whatever arrives and queues the
 * echo without pausing, as a UART's receiver does: an echo that stopped reading while its own
 * output is blocked would deadlock with socat, which relays both directions in one thread with
 * blocking writes.
 */
export function echo(handle: DeviceHandle): Buffer[] {
  const received: Buffer[] = [];
  handle.stream.on('data', (chunk: Buffer) => {
    received.push(chunk);
    handle.stream.write(chunk);
  });
  handle.stream.on('error', () => undefined);
  return received;
}
