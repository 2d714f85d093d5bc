/**
 * The well-behaved client of the attack tests, in its own process as a real app or sidecar is:
 * the attacked process's event loop then carries only the server's share of each round trip, not
 * the client's as well. Run with one JSON argument, a ProbeTarget. It connects, says `ready`, and
 * for each `{ roundTrips: n }` it is sent runs n AT → OK round trips one after another and answers
 * with their durations in ms.
 */
import { type ChildProcess, fork } from 'node:child_process';
import * as net from 'node:net';
import { AgentPool } from '../../sidecar/agent-pool';
import type { TlsMaterial } from '../../src/security/tls-identity';
import type { Session } from '../../src/socket-plane/session';
import { testLogger } from '../unit/agent/helpers';
import { RotatingTlsIdentity } from './test-pki';

export type ProbeTarget =
  /** An app on a virtual device's TCP port; with `greeting`, it waits for the server to speak first (RFC 2217 negotiation). */
  | { kind: 'tcp'; port: number; greeting: boolean }
  /** A sidecar's session on an agent's socket plane, over mTLS with `tls`. */
  | { kind: 'socket-plane'; address: string; hostId: string; mappingId: string; workloadId: string; tls: TlsMaterial };

type ProbeMessage = { ready: true } | { durationsMs: number[] } | { failed: string };

export interface Probe {
  readonly pid: number | undefined;
  /** Durations of `n` sequential round trips, in ms, measured in the probe's process. */
  measure(n: number): Promise<number[]>;
  close(): Promise<void>;
}

/** Forks a probe on `target`; resolves once it is connected and has done `warmUp` round trips. */
export async function startProbe(target: ProbeTarget, warmUp = 50): Promise<Probe> {
  const child: ChildProcess = fork(__filename, [JSON.stringify(target)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const next = (): Promise<ProbeMessage> =>
    new Promise((resolve, reject) => {
      const onExit = (code: number | null): void => reject(new Error(`the latency probe exited (${code ?? 'signal'})`));
      child.once('exit', onExit);
      child.once('message', (m) => {
        child.off('exit', onExit);
        const message = m as ProbeMessage;
        if ('failed' in message) reject(new Error(`latency probe: ${message.failed}`));
        else resolve(message);
      });
    });
  await next();
  const probe: Probe = {
    pid: child.pid,
    async measure(n) {
      const answer = next();
      child.send({ roundTrips: n });
      const message = await answer;
      if (!('durationsMs' in message)) throw new Error('the latency probe answered out of turn');
      return message.durationsMs;
    },
    async close() {
      child.kill();
      await exited;
    },
  };
  await probe.measure(warmUp);
  return probe;
}

/** AT → OK through `write`; resolves on the OK that `onData` delivers. */
function modemRoundTrip(write: (b: Buffer) => void, onData: (listener: (chunk: Buffer) => void) => void): () => Promise<void> {
  let text = '';
  let waiting: (() => void) | undefined;
  onData((chunk) => {
    text += chunk.toString('latin1');
    if (waiting && text.includes('OK\r\n')) {
      text = '';
      const w = waiting;
      waiting = undefined;
      w();
    }
  });
  return () =>
    new Promise<void>((resolve) => {
      waiting = resolve;
      write(Buffer.from('AT\r'));
    });
}

async function connect(target: ProbeTarget): Promise<() => Promise<void>> {
  if (target.kind === 'tcp') {
    const socket = net.connect({ port: target.port, host: '127.0.0.1' });
    socket.setNoDelay(true);
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.once(target.greeting ? 'data' : 'connect', () => resolve());
    });
    return modemRoundTrip(
      (b) => socket.write(b),
      (listener) => socket.on('data', listener),
    );
  }
  const tls = new RotatingTlsIdentity({ ...target.tls, notAfter: new Date(target.tls.notAfter) });
  const pool = new AgentPool(testLogger(), { tls });
  const session: Session = await pool.connection(target.address, target.hostId).openSession({ mappingId: target.mappingId, workloadId: target.workloadId });
  return modemRoundTrip(
    (b) => session.write(b),
    (listener) =>
      session.on('data', (chunk: Buffer) => {
        session.consumed(chunk.length);
        listener(chunk);
      }),
  );
}

async function run(target: ProbeTarget): Promise<void> {
  const send = (m: ProbeMessage): void => {
    process.send?.(m);
  };
  let roundTrip: () => Promise<void>;
  try {
    roundTrip = await connect(target);
  } catch (err) {
    send({ failed: err instanceof Error ? err.message : String(err) });
    return;
  }
  process.on('message', (m: { roundTrips: number }) => {
    void (async () => {
      const durationsMs: number[] = [];
      for (let i = 0; i < m.roundTrips; i++) {
        const t = process.hrtime.bigint();
        await roundTrip();
        durationsMs.push(Number(process.hrtime.bigint() - t) / 1e6);
      }
      send({ durationsMs });
    })();
  });
  process.once('disconnect', () => process.exit(0));
  send({ ready: true });
}

if (require.main === module) void run(JSON.parse(process.argv[2] ?? '{}') as ProbeTarget);
