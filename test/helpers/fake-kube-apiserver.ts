import * as https from 'node:https';
import type * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { KubeConfig } from '@kubernetes/client-node';
import { TestCa } from './test-pki';

/** A stored object: what the API server keeps of a custom resource, a Lease or an Event. */
export interface StoredObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; resourceVersion: string; generation?: number; uid: string; generateName?: string };
  spec?: unknown;
  status?: unknown;
  [field: string]: unknown;
}

interface WatchEvent {
  rv: number;
  plural: string;
  type: 'ADDED' | 'MODIFIED' | 'DELETED';
  object: StoredObject;
}

interface OpenWatch {
  plural: string;
  res: http.ServerResponse;
  bookmarks: boolean;
}

export interface StatusWrite {
  plural: string;
  name: string;
  token: string;
  status: Record<string, unknown>;
}

const KINDS: Readonly<Record<string, string>> = { bindings: 'Binding', devicepolicies: 'DevicePolicy' };
const GROUP_PATH = '/apis/devicemesh.io/v1/';
const LEASES = /^\/apis\/coordination\.k8s\.io\/v1\/namespaces\/([^/]+)\/leases(?:\/([^/]+))?$/;
const EVENTS = /^\/api\/v1\/namespaces\/([^/]+)\/events$/;

/**
 * A Kubernetes API server for the controller's tests, speaking the real wire format over HTTPS
 * with bearer tokens: lists (`{kind: BindingList, metadata: {resourceVersion}, items}`), watches
 * as a chunked stream of one JSON event per line from a resourceVersion (ADDED, MODIFIED, DELETED,
 * BOOKMARK when asked for with allowWatchBookmarks, ERROR with a 410 Status for a version older
 * than the last compaction), the status subresource (merge patch; spec changes bump generation,
 * status changes do not), coordination.k8s.io Leases with optimistic concurrency (409 on a stale
 * resourceVersion) and core Events. Tests break watches mid-line, compact history, and read what
 * was written and by which token.
 */
export class FakeKubeApiServer {
  readonly statusWrites: StatusWrite[] = [];
  readonly events: StoredObject[] = [];
  /** Watch requests received, by plural, with the resourceVersion each asked from. */
  readonly watchRequests: { plural: string; resourceVersion: string; bookmarks: boolean }[] = [];
  lists = 0;
  private rv = 100;
  private uid = 0;
  private compactedBefore = 0;
  private readonly objects = new Map<string, Map<string, StoredObject>>([
    ['bindings', new Map()],
    ['devicepolicies', new Map()],
  ]);
  private readonly leases = new Map<string, StoredObject>();
  private readonly history: WatchEvent[] = [];
  private readonly watches = new Set<OpenWatch>();

  private constructor(
    private readonly server: https.Server,
    readonly caPem: string,
    private readonly tokens: ReadonlySet<string>,
  ) {}

  static async start(tokens: readonly string[]): Promise<FakeKubeApiServer> {
    const ca = await TestCa.create('fake kube-apiserver CA');
    const leaf = await ca.issue('kube-apiserver', { ips: ['127.0.0.1'] });
    let fake: FakeKubeApiServer | undefined;
    const server = https.createServer({ key: leaf.key, cert: leaf.cert }, (req, res) => fake?.handle(req, res));
    fake = new FakeKubeApiServer(server, ca.certPem, new Set(tokens));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return fake;
  }

  get url(): string {
    return `https://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  /** A kubeconfig for this server, as `kubectl` would have it: the server's CA and a bearer token. */
  kubeConfig(token: string): KubeConfig {
    const kc = new KubeConfig();
    kc.loadFromOptions({
      clusters: [{ name: 'fake', server: this.url, caData: Buffer.from(this.caPem).toString('base64') }],
      users: [{ name: 'controller', token }],
      contexts: [{ name: 'fake', cluster: 'fake', user: 'controller' }],
      currentContext: 'fake',
    });
    return kc;
  }

  /** `kubectl apply` of a new resource. */
  create(plural: string, name: string, spec: unknown): StoredObject {
    const object: StoredObject = {
      apiVersion: 'devicemesh.io/v1',
      kind: KINDS[plural] as string,
      metadata: { name, resourceVersion: String(++this.rv), generation: 1, uid: `uid-${++this.uid}` },
      spec,
    };
    this.store(plural).set(name, object);
    this.publish(plural, 'ADDED', object);
    return object;
  }

  /** A spec change: a new generation. */
  update(plural: string, name: string, spec: unknown): StoredObject {
    const old = this.get(plural, name);
    const object: StoredObject = { ...old, metadata: { ...old.metadata, resourceVersion: String(++this.rv), generation: (old.metadata.generation ?? 1) + 1 }, spec };
    this.store(plural).set(name, object);
    this.publish(plural, 'MODIFIED', object);
    return object;
  }

  delete(plural: string, name: string): void {
    const old = this.get(plural, name);
    this.store(plural).delete(name);
    this.publish(plural, 'DELETED', { ...old, metadata: { ...old.metadata, resourceVersion: String(++this.rv) } });
  }

  get(plural: string, name: string): StoredObject {
    const object = this.store(plural).get(name);
    if (!object) throw new Error(`no ${plural}/${name}`);
    return object;
  }

  lease(namespace: string, name: string): StoredObject | undefined {
    return this.leases.get(`${namespace}/${name}`);
  }

  /** Open watch streams. */
  openWatches(): number {
    return this.watches.size;
  }

  /** Cuts every watch in the middle of an event line, as a dropped connection or a restarted API server does. */
  breakWatches(): void {
    for (const w of this.watches) {
      w.res.write('{"type":"MODIFIED","object":{"kind":');
      w.res.socket?.destroy();
    }
    this.watches.clear();
  }

  /** Forgets history up to now: a watch from an older resourceVersion gets 410 Gone. */
  compact(): void {
    this.compactedBefore = this.rv;
    this.history.length = 0;
  }

  /** Ends every open watch with a 410 ERROR event, as an API server does when a watcher's version is compacted away. */
  expireWatches(): void {
    for (const w of this.watches) {
      w.res.end(JSON.stringify(goneEvent()) + '\n');
    }
    this.watches.clear();
  }

  /** A BOOKMARK on every watch that asked for them. */
  bookmark(): void {
    for (const w of this.watches) {
      if (!w.bookmarks) continue;
      w.res.write(JSON.stringify({ type: 'BOOKMARK', object: { apiVersion: 'devicemesh.io/v1', kind: KINDS[w.plural], metadata: { resourceVersion: String(this.rv) } } }) + '\n');
    }
  }

  close(): Promise<void> {
    for (const w of this.watches) w.res.socket?.destroy();
    this.watches.clear();
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  private store(plural: string): Map<string, StoredObject> {
    const s = this.objects.get(plural);
    if (!s) throw new Error(`unknown resource ${plural}`);
    return s;
  }

  private publish(plural: string, type: WatchEvent['type'], object: StoredObject): void {
    const event = { rv: Number(object.metadata.resourceVersion), plural, type, object };
    this.history.push(event);
    for (const w of this.watches) if (w.plural === plural) w.res.write(line(event));
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const token = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1] ?? '';
    if (!this.tokens.has(token)) return reply(res, 401, status(401, 'Unauthorized', 'Unauthorized'));
    const url = new URL(req.url ?? '/', this.url);
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      try {
        this.route(req.method ?? 'GET', url, body, token, res);
      } catch (err) {
        reply(res, 500, status(500, 'InternalError', (err as Error).message));
      }
    });
  }

  private route(method: string, url: URL, body: string, token: string, res: http.ServerResponse): void {
    const lease = LEASES.exec(url.pathname);
    if (lease) return this.leaseRoute(method, lease[1] as string, lease[2], body, res);
    const events = EVENTS.exec(url.pathname);
    if (events && method === 'POST') {
      const event = JSON.parse(body) as StoredObject;
      event.metadata = { ...event.metadata, name: `${event.metadata?.generateName ?? 'event.'}${++this.uid}`, namespace: events[1] as string, resourceVersion: String(++this.rv), uid: `uid-${this.uid}` };
      this.events.push(event);
      return reply(res, 201, event);
    }
    if (!url.pathname.startsWith(GROUP_PATH)) return reply(res, 404, status(404, 'NotFound', `no route ${url.pathname}`));
    const [plural, name, sub] = url.pathname.slice(GROUP_PATH.length).split('/');
    if (!plural || !this.objects.has(plural)) return reply(res, 404, status(404, 'NotFound', `no resource ${plural}`));
    if (!name && method === 'GET' && url.searchParams.get('watch') === 'true') return this.watch(plural, url, res);
    if (!name && method === 'GET') {
      this.lists += 1;
      return reply(res, 200, {
        apiVersion: 'devicemesh.io/v1',
        kind: `${KINDS[plural]}List`,
        metadata: { resourceVersion: String(this.rv) },
        items: [...this.store(plural).values()],
      });
    }
    if (name && sub === 'status' && method === 'PATCH') {
      const object = this.store(plural).get(name);
      if (!object) return reply(res, 404, status(404, 'NotFound', `${plural} "${name}" not found`));
      const patch = JSON.parse(body) as { status: Record<string, unknown> };
      this.statusWrites.push({ plural, name, token, status: patch.status });
      const next: StoredObject = { ...object, metadata: { ...object.metadata, resourceVersion: String(++this.rv) }, status: { ...(object.status as object), ...patch.status } };
      this.store(plural).set(name, next);
      this.publish(plural, 'MODIFIED', next);
      return reply(res, 200, next);
    }
    reply(res, 405, status(405, 'MethodNotAllowed', `${method} ${url.pathname}`));
  }

  private watch(plural: string, url: URL, res: http.ServerResponse): void {
    const from = url.searchParams.get('resourceVersion') ?? '';
    const bookmarks = url.searchParams.get('allowWatchBookmarks') === 'true';
    this.watchRequests.push({ plural, resourceVersion: from, bookmarks });
    // No Content-Length: Node sends the body chunked, as the API server does.
    res.writeHead(200, { 'Content-Type': 'application/json' });
    res.flushHeaders();
    if (from !== '' && Number(from) < this.compactedBefore) {
      res.end(JSON.stringify(goneEvent()) + '\n');
      return;
    }
    for (const e of this.history) if (e.plural === plural && e.rv > Number(from || 0)) res.write(line(e));
    const w: OpenWatch = { plural, res, bookmarks };
    this.watches.add(w);
    res.on('close', () => this.watches.delete(w));
  }

  private leaseRoute(method: string, namespace: string, name: string | undefined, body: string, res: http.ServerResponse): void {
    const key = `${namespace}/${name ?? ''}`;
    if (method === 'GET' && name) {
      const lease = this.leases.get(key);
      return lease ? reply(res, 200, lease) : reply(res, 404, status(404, 'NotFound', `leases "${name}" not found`));
    }
    const lease = JSON.parse(body) as StoredObject;
    const leaseKey = `${namespace}/${lease.metadata.name}`;
    if (method === 'POST' && !name) {
      if (this.leases.has(leaseKey)) return reply(res, 409, status(409, 'AlreadyExists', `leases "${lease.metadata.name}" already exists`));
      const created = { ...lease, metadata: { ...lease.metadata, namespace, resourceVersion: String(++this.rv), uid: `uid-${++this.uid}` } };
      this.leases.set(leaseKey, created);
      return reply(res, 201, created);
    }
    if (method === 'PUT' && name) {
      const current = this.leases.get(key);
      if (!current) return reply(res, 404, status(404, 'NotFound', `leases "${name}" not found`));
      if (lease.metadata.resourceVersion !== current.metadata.resourceVersion) {
        return reply(res, 409, status(409, 'Conflict', 'Operation cannot be fulfilled on leases: the object has been modified; please apply your changes to the latest version and try again'));
      }
      const replaced = { ...lease, metadata: { ...current.metadata, resourceVersion: String(++this.rv) } };
      this.leases.set(key, replaced);
      return reply(res, 200, replaced);
    }
    reply(res, 405, status(405, 'MethodNotAllowed', `${method} leases`));
  }
}

function line(e: WatchEvent): string {
  return JSON.stringify({ type: e.type, object: e.object }) + '\n';
}

function goneEvent(): unknown {
  return { type: 'ERROR', object: status(410, 'Expired', 'too old resource version') };
}

function status(code: number, reason: string, message: string): unknown {
  return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, code };
}

function reply(res: http.ServerResponse, code: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(code, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) });
  res.end(text);
}
