import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as os from 'node:os';
import type { Logger } from '../log';
import { RefusalLog } from '../security/refusal-log';
import { hostOfHeader, isLoopbackName } from '../security/served-names';
import type { Stats } from '../telemetry/stats';
import { formatHostPort, parseHostPort } from '../util/address';

/** What a process exposes on its admin interface, after Envoy's admin. */
export interface AdminSource {
  /** True once the process can do its job (Istio's readiness). */
  ready(): boolean;
  stats: Stats;
  /** The configuration the process is running with, as JSON. */
  configDump(): unknown;
  /** Extra routes, e.g. the control plane's dashboard; return false to fall through to 404. */
  extra?(req: http.IncomingMessage, res: http.ServerResponse): boolean;
}

export interface RunningAdmin {
  address: string;
  close(): Promise<void>;
}

/**
 * Serves /ready, /stats, /stats/prometheus and /config_dump. Binds loopback unless told otherwise.
 * Answers only requests whose Host: names loopback, the listen address, the address the client
 * reached or the host name: a page of another site whose name an attacker points at 127.0.0.1
 * (DNS rebinding) sends its own name, and gets 421.
 */
export function startAdminServer(address: string, source: AdminSource, log: Logger): Promise<RunningAdmin> {
  const { host, port } = parseHostPort(address);
  const refusals = new RefusalLog('admin_requests_refused', source.stats, log);
  const ownNames = new Set([hostOfHeader(host.includes(':') ? `[${host}]` : host), os.hostname().toLowerCase()]);
  const server = http.createServer((req, res) => {
    const named = hostOfHeader(req.headers.host ?? '');
    const local = (req.socket.localAddress ?? '').replace(/^::ffff:/, '');
    if (named === undefined || !(isLoopbackName(named) || ownNames.has(named) || named === hostOfHeader(local.includes(':') ? `[${local}]` : local))) {
      refusals.refuse('unknown_host', `${req.socket.remoteAddress ?? ''}:${req.socket.remotePort ?? 0}`, { host: req.headers.host, path: req.url }, 'admin request refused');
      send(res, 421, 'text/plain', `misdirected request: Host ${JSON.stringify(req.headers.host ?? '')} is not a name of this admin server\n`);
      return;
    }
    const url = new URL(req.url ?? '/', 'http://admin');
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      send(res, 405, 'text/plain', 'method not allowed\n');
      return;
    }
    switch (url.pathname) {
      case '/ready': {
        const ok = source.ready();
        send(res, ok ? 200 : 503, 'text/plain', ok ? 'LIVE\n' : 'NOT READY\n');
        return;
      }
      case '/stats':
        send(res, 200, 'text/plain', source.stats.renderText());
        return;
      case '/stats/prometheus':
        source.stats.renderPrometheus().then(
          (text) => send(res, 200, 'text/plain; version=0.0.4', text),
          (err: unknown) => send(res, 500, 'text/plain', `collecting metrics failed: ${err instanceof Error ? err.message : String(err)}\n`),
        );
        return;
      case '/config_dump':
        send(res, 200, 'application/json', JSON.stringify(source.configDump(), null, 2) + '\n');
        return;
      default:
        if (source.extra?.(req, res)) return;
        send(res, 404, 'text/plain', 'not found\n');
    }
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      const bound = formatHostPort({ host, port: (server.address() as AddressInfo).port });
      log.info({ admin: bound }, 'admin listening');
      resolve({
        address: bound,
        close: () =>
          new Promise<void>((done) => {
            server.closeAllConnections();
            server.close(() => done());
          }),
      });
    });
  });
}

function send(res: http.ServerResponse, status: number, type: string, body: string): void {
  res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' });
  res.end(body);
}
