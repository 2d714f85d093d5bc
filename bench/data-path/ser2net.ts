import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { accepts, Child, freePort, waitFor } from './children';
import { BAUD_RATE } from './line-settings';

/** ser2net's version, or undefined when it is not installed. */
export function ser2netVersion(): string | undefined {
  const r = spawnSync('ser2net', ['-v'], { encoding: 'utf8' });
  if (r.error || r.status !== 0) return undefined;
  return /version (\S+)/.exec(`${r.stdout}${r.stderr}`)?.[1] ?? 'unknown';
}

/** Buffer size of the tuned configuration: as large as the app's writes, so a bulk write is not cut into 64-byte reads. */
const TUNED_BUFFER_BYTES = 65_536;

/**
 * The ser2net 4 YAML for one raw TCP port in front of `device`: TCP on loopback, no telnet, no
 * banner, modem lines ignored (`local`), a new client takes over from an old one. Everything else
 * is ser2net's default unless `tuned`: then TCP_NODELAY (as the other paths' sockets), no
 * chardelay (by default ser2net holds what the device sent for the time of 2 characters, at
 * least 1000 µs, unless its buffer is full) and 64 KiB buffers instead of 64 bytes each way.
 * `rfc2217`: the port speaks Telnet with RFC 2217 instead of raw bytes.
 */
export function ser2netConfig(device: string, port: number, tuned: boolean, rfc2217 = false): string {
  const tcp = tuned ? 'tcp(nodelay)' : 'tcp';
  const lines = [
    'connection: &bench',
    `  accepter: ${rfc2217 ? `telnet(rfc2217),${tcp}` : tcp},127.0.0.1,${port}`,
    `  connector: serialdev,${device},${BAUD_RATE}n81,local`,
    '  options:',
    '    kickolduser: true',
  ];
  if (tuned) {
    lines.push('    chardelay: false', `    dev-to-net-bufsize: ${TUNED_BUFFER_BYTES}`, `    net-to-dev-bufsize: ${TUNED_BUFFER_BYTES}`);
  }
  return `${lines.join('\n')}\n`;
}

/** ser2net in the foreground (`-n -d`) on a free port, with its own config, log and pid file in `dir`. */
export class Ser2net {
  private constructor(
    readonly port: number,
    readonly child: Child,
  ) {}

  static async start(dir: string, device: string, tuned: boolean, rfc2217 = false): Promise<Ser2net> {
    const port = await freePort();
    const config = path.join(dir, 'ser2net.yaml');
    fs.writeFileSync(config, ser2netConfig(device, port, tuned, rfc2217));
    const child = Child.spawn('ser2net', 'ser2net', ['-n', '-d', '-c', config, '-P', path.join(dir, 'ser2net.pid')], path.join(dir, 'ser2net.log'));
    try {
      await waitFor('ser2net to accept connections', () => accepts(port), 10_000, () => child.exitError());
    } catch (err) {
      await child.stop();
      throw err;
    }
    return new Ser2net(port, child);
  }

  stop(): Promise<void> {
    return this.child.stop();
  }
}
