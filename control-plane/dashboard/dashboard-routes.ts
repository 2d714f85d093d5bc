import * as fs from 'node:fs';
import type * as http from 'node:http';
import * as path from 'node:path';
import type { MeshOverview } from '../../src/admin/mesh-overview';

/** The dashboard's files, built into dist/dashboard by `npm run build` (scripts/build-dashboard.js). */
const STATIC_FILES: Readonly<Record<string, { file: string; type: string }>> = {
  '/': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/dashboard.js': { file: 'dashboard.js', type: 'text/javascript; charset=utf-8' },
  '/dashboard.css': { file: 'dashboard.css', type: 'text/css; charset=utf-8' },
  '/uPlot.esm.js': { file: 'uPlot.esm.js', type: 'text/javascript; charset=utf-8' },
  '/uPlot.min.css': { file: 'uPlot.min.css', type: 'text/css; charset=utf-8' },
};

export interface DashboardOptions {
  overview(): MeshOverview;
  /** GET /adaptation's document. */
  adaptation(): unknown;
  /** Where the built dashboard files are. */
  staticDir: string;
  /** How often /api/events sends the overview without a change, for the rates (ms). */
  pushIntervalMs: number;
}

/**
 * The control plane admin's dashboard routes: the page and its files at `/`, the overview as
 * JSON at /api/overview, the same as server-sent events at /api/events (on every committed change
 * and every `pushIntervalMs`), and the adaptive-limit log at /adaptation.
 */
export class DashboardRoutes {
  private readonly clients = new Set<http.ServerResponse>();
  private timer: NodeJS.Timeout | undefined;
  private changePending = false;

  constructor(private readonly options: DashboardOptions) {}

  /** @returns false for a path it does not serve. */
  handle(req: http.IncomingMessage, res: http.ServerResponse): boolean {
    const pathname = new URL(req.url ?? '/', 'http://admin').pathname;
    if (pathname === '/api/overview') {
      json(res, this.options.overview());
      return true;
    }
    if (pathname === '/adaptation') {
      json(res, this.options.adaptation());
      return true;
    }
    if (pathname === '/api/events') {
      this.subscribe(res);
      return true;
    }
    const entry = STATIC_FILES[pathname];
    if (!entry) return false;
    fs.readFile(path.join(this.options.staticDir, entry.file), (err, body) => {
      if (err) {
        res.writeHead(503, { 'content-type': 'text/plain' });
        res.end(`dashboard file ${entry.file} is missing (run npm run build): ${err.message}\n`);
        return;
      }
      res.writeHead(200, { 'content-type': entry.type, 'cache-control': 'no-cache' });
      res.end(body);
    });
    return true;
  }

  /** Something was committed: every subscriber gets the new overview (once per tick however many commits). */
  changed(): void {
    if (this.changePending || this.clients.size === 0) return;
    this.changePending = true;
    setImmediate(() => {
      this.changePending = false;
      this.broadcast();
    });
  }

  close(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    for (const res of this.clients) res.end();
    this.clients.clear();
  }

  private subscribe(res: http.ServerResponse): void {
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store', connection: 'keep-alive' });
    this.clients.add(res);
    res.on('close', () => {
      this.clients.delete(res);
      if (this.clients.size === 0 && this.timer) {
        clearInterval(this.timer);
        this.timer = undefined;
      }
    });
    res.write(event(this.options.overview()));
    this.timer ??= setInterval(() => this.broadcast(), this.options.pushIntervalMs);
  }

  private broadcast(): void {
    if (this.clients.size === 0) return;
    const message = event(this.options.overview());
    for (const res of this.clients) res.write(message);
  }
}

function event(overview: MeshOverview): string {
  return `event: overview\ndata: ${JSON.stringify(overview)}\n\n`;
}

function json(res: http.ServerResponse, body: unknown): void {
  res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' });
  res.end(JSON.stringify(body, null, 2) + '\n');
}
