/**
 * A misbehaving client in its own process, so its own work does not share the event loop of the
 * server it attacks (and of the well-behaved client being measured). Run with one JSON argument:
 *
 *   slowloris: `count` connections from `localAddress`, each sending `prefix` then one byte every
 *              `intervalMs` (a TLS record header that never completes, a Telnet IAC SB that never ends).
 *   flood:     as many connections as it can, `parallel` at a time, each closed on connect, for `durationMs`.
 *
 * Reports to the parent over IPC: {connected, closed, refusedEarly} every 100 ms and when done.
 */
import * as net from 'node:net';

export interface AttackPlan {
  mode: 'slowloris' | 'flood';
  port: number;
  localAddress: string;
  count?: number;
  parallel?: number;
  intervalMs?: number;
  durationMs: number;
  /** Hex bytes sent first on every slow-loris connection. */
  prefixHex?: string;
  /** Slow-loris: wait for the server to speak first (Telnet negotiation) before the prefix. */
  waitForServer?: boolean;
}

export interface AttackReport {
  connected: number;
  closed: number;
  /** Connections closed by the server within 50 ms of connecting (refused by a limit). */
  refusedEarly: number;
  done: boolean;
}

function run(plan: AttackPlan): void {
  const report: AttackReport = { connected: 0, closed: 0, refusedEarly: 0, done: false };
  const sockets = new Set<net.Socket>();
  const send = (): void => {
    process.send?.(report);
  };
  const ticker = setInterval(send, 100);
  const open = (onClose: () => void): net.Socket => {
    const at = Date.now();
    const socket = net.connect({ port: plan.port, host: '127.0.0.1', localAddress: plan.localAddress });
    sockets.add(socket);
    socket.on('connect', () => report.connected++);
    socket.on('error', () => undefined);
    socket.on('data', () => undefined);
    socket.on('close', () => {
      sockets.delete(socket);
      report.closed++;
      if (Date.now() - at < 50) report.refusedEarly++;
      onClose();
    });
    return socket;
  };

  const stopAt = Date.now() + plan.durationMs;
  if (plan.mode === 'slowloris') {
    const prefix = Buffer.from(plan.prefixHex ?? '', 'hex');
    for (let i = 0; i < (plan.count ?? 10); i++) {
      let timer: NodeJS.Timeout | undefined;
      const socket = open(() => clearInterval(timer));
      const trickle = (): void => {
        if (prefix.length > 0) socket.write(prefix);
        timer = setInterval(() => socket.write(Buffer.from([0x41])), plan.intervalMs ?? 200);
      };
      if (plan.waitForServer) socket.once('data', trickle);
      else socket.once('connect', trickle);
    }
  } else {
    const next = (): void => {
      if (Date.now() >= stopAt) return;
      const socket = open(next);
      socket.once('connect', () => socket.destroy());
    };
    for (let i = 0; i < (plan.parallel ?? 20); i++) next();
  }
  setTimeout(() => {
    for (const s of sockets) s.destroy();
    clearInterval(ticker);
    report.done = true;
    send();
    process.disconnect?.();
  }, plan.durationMs).unref();
}

if (require.main === module) run(JSON.parse(process.argv[2] ?? '{}') as AttackPlan);
