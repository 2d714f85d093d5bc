import * as http from 'node:http';
import type { MeshOverview } from '../src/admin/mesh-overview';
import { errorMessage, UnavailableError } from '../src/errors';

/** GET /api/overview from a control plane's admin interface; rejects with UnavailableError. */
export function fetchOverview(admin: string, timeoutMs = 3000): Promise<MeshOverview> {
  return new Promise((resolve, reject) => {
    const fail = (why: string): void => reject(new UnavailableError(`control plane admin at ${admin} is unreachable (${why})`));
    const req = http.get(`http://${admin}/api/overview`, { timeout: timeoutMs }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => {
        if (res.statusCode !== 200) {
          fail(`HTTP ${res.statusCode ?? 0}`);
          return;
        }
        try {
          resolve(JSON.parse(body) as MeshOverview);
        } catch (err) {
          fail(`unreadable overview: ${errorMessage(err)}`);
        }
      });
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on('error', (err) => fail(err.message));
  });
}
