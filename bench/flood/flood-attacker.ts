/**
 * The benchmark's attacker, in its own process: `rate` new connections a second to
 * 127.0.0.1:`port` from `localAddress`, each dropped as soon as it connects, until told to stop.
 * The rate is kept whatever the server does (at most MAX_IN_FLIGHT connections pending, beyond
 * which a tick's connections are skipped and counted), so each way of refusing faces the same
 * flood. Answers `{ connected, skipped }` so far whenever it is sent anything.
 */
import * as net from 'node:net';

const TICK_MS = 10;
const MAX_IN_FLIGHT = 2000;

function flood(port: number, rate: number, localAddress: string): void {
  let connected = 0;
  let skipped = 0;
  let inFlight = 0;
  let due = 0;
  const open = (): void => {
    inFlight += 1;
    const socket = net.connect({ port, host: '127.0.0.1', localAddress });
    socket.on('error', () => undefined);
    socket.once('connect', () => {
      connected += 1;
      socket.destroy();
    });
    socket.once('close', () => (inFlight -= 1));
  };
  const ticker = setInterval(() => {
    due += (rate * TICK_MS) / 1000;
    for (; due >= 1; due -= 1) {
      if (inFlight < MAX_IN_FLIGHT) open();
      else skipped += 1;
    }
  }, TICK_MS);
  process.on('message', () => process.send?.({ connected, skipped }));
  process.once('disconnect', () => {
    clearInterval(ticker);
    process.exit(0);
  });
}

if (require.main === module) flood(Number(process.argv[2]), Number(process.argv[3]), process.argv[4] ?? '127.0.0.3');
