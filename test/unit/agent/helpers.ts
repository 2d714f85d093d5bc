import { Writable } from 'node:stream';
import pino from 'pino';
import type { Logger } from '../../../src/log';
import type { SerialConfig } from '../../../src/proto/types';
import type { DeviceConfig } from '../../../agent/drivers/device-driver';

/** A device configuration of line settings only. */
export function lineConfig(serial: SerialConfig | null, settings: Record<string, string> = {}): DeviceConfig {
  return { serial, settings };
}

/** Polls `check` until it holds. */
export async function waitFor(check: () => boolean | Promise<boolean>, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Quiet unless DEVICEMESH_TEST_LOG is set (e.g. to `debug`). */
export function testLogger(): Logger {
  return pino({ level: process.env.DEVICEMESH_TEST_LOG ?? 'silent' }, pino.destination(2));
}

/** A logger that keeps its records, for asserting what was logged. */
export function recordingLogger(): { log: Logger; records: Array<Record<string, unknown>> } {
  const records: Array<Record<string, unknown>> = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb): void {
      for (const line of chunk.toString('utf8').split('\n')) if (line) records.push(JSON.parse(line) as Record<string, unknown>);
      cb();
    },
  });
  return { log: pino({ level: 'debug' }, sink), records };
}
