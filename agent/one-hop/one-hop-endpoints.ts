import { errorMessage } from '../../src/errors';
import type { Mapping } from '../../src/proto/types';
import { accountId } from '../../src/util/account-ids';
import { type OneHopContext, OneHopEndpoint } from './one-hop-endpoint';

/** Most app connections at once on one one-hop endpoint (the sidecar's app-listener default). */
export const DEFAULT_ONE_HOP_CONNECTIONS = 256;

/** What makes an endpoint the same socket: a change in any of these rebinds it. */
function socketKey(m: Mapping): string {
  const v = m.virtual;
  return JSON.stringify([v?.path ?? '', v?.owner ?? '', v?.group ?? '', v?.mode ?? 0, v?.protocol ?? '']);
}

/**
 * The agent's one-hop endpoints, kept in step with its mapping table: one per mapping whose
 * virtual endpoint is one-hop (the control plane sends those to the agent alone). `sync` after each
 * applied update opens the new ones, rebinds the changed ones and closes the withdrawn ones, and
 * returns a problem per endpoint it could not serve (its directory another's, its owner unknown):
 * the ADS handler NACKs with them.
 */
export class OneHopEndpoints {
  private readonly endpoints = new Map<string, { key: string; endpoint: OneHopEndpoint }>();
  private syncing: Promise<unknown> = Promise.resolve();

  constructor(private readonly ctx: OneHopContext) {}

  /** Serves exactly the one-hop mappings of `mappings`; one update at a time. */
  sync(mappings: readonly Mapping[]): Promise<string[]> {
    const done = this.syncing.then(() => this.syncNow(mappings));
    this.syncing = done.catch(() => undefined);
    return done;
  }

  /** Paths and live connections, for /config_dump. */
  state(): Array<{ mappingId: string; path: string; uid: number; connections: number }> {
    return [...this.endpoints].map(([mappingId, { endpoint }]) => ({ mappingId, path: endpoint.path, uid: endpoint.owner.uid, connections: endpoint.connectionCount }));
  }

  async close(): Promise<void> {
    const all = [...this.endpoints.values()];
    this.endpoints.clear();
    await Promise.all(all.map(({ endpoint }) => endpoint.close()));
  }

  private async syncNow(mappings: readonly Mapping[]): Promise<string[]> {
    const wanted = new Map(mappings.filter((m) => m.virtual?.oneHop).map((m) => [m.id, m]));
    const closing: Array<Promise<void>> = [];
    for (const [id, served] of this.endpoints) {
      const m = wanted.get(id);
      if (m && socketKey(m) === served.key) continue;
      this.endpoints.delete(id);
      closing.push(served.endpoint.close());
    }
    await Promise.all(closing);
    const problems: string[] = [];
    await Promise.all(
      [...wanted.values()].map(async (m) => {
        const served = this.endpoints.get(m.id);
        if (served) {
          served.endpoint.update(m);
          return;
        }
        try {
          const owner = { uid: (await accountId('passwd', m.virtual?.owner)) ?? process.getuid?.() ?? 0, gid: await accountId('group', m.virtual?.group) };
          this.endpoints.set(m.id, { key: socketKey(m), endpoint: await OneHopEndpoint.start(m, owner, this.ctx) });
        } catch (err) {
          this.ctx.stats.add('one_hop_endpoints_failed', 1, { mapping: m.id });
          this.ctx.log.warn({ mapping: m.id, path: m.virtual?.path, error: errorMessage(err) }, 'cannot serve the one-hop endpoint');
          problems.push(`mapping ${m.id}: one-hop endpoint ${m.virtual?.path ?? ''}: ${errorMessage(err)}`);
        }
      }),
    );
    return problems;
  }
}
