import * as grpc from '@grpc/grpc-js';
import { ReplicaSet } from '../grpc/replica-set';
import type { Logger } from '../log';
import { serviceClient } from '../proto/load';
import { Backoff } from '../util/backoff';
import { SPIFFE_CHANNEL_OPTIONS } from './control-plane-identity';

export interface RevocationWatchOptions {
  /** The control plane's host:port, or its replicas' separated by commas (tried in turn). */
  address: string;
  credentials: grpc.ChannelCredentials;
  /** Every list the control plane sends: the serials (upper-case hex) of revoked certificates not yet expired. */
  onList(serials: ReadonlySet<string>): void;
  log: Logger;
}

interface IdentityWatchClient extends grpc.Client {
  watchRevocations(request: object): grpc.ClientReadableStream<{ serials: string[] }>;
}

/**
 * Follows `Identity/WatchRevocations`: the control plane sends the whole list at once and again
 * on every revocation, so a member learns of one within a round trip. A broken stream is
 * reopened with backoff; the last list received stays in force meanwhile.
 */
export class RevocationWatch {
  private readonly replicas: ReplicaSet<IdentityWatchClient>;
  private readonly backoff = new Backoff(250, 5000);
  private stream: grpc.ClientReadableStream<{ serials: string[] }> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(private readonly options: RevocationWatchOptions) {
    const Ctor = serviceClient('devicemesh.v1.Identity');
    this.replicas = new ReplicaSet(options.address, (a) => new Ctor(a, options.credentials, SPIFFE_CHANNEL_OPTIONS) as unknown as IdentityWatchClient);
  }

  start(): void {
    if (this.closed || this.stream) return;
    const stream = this.replicas.current().client.watchRevocations({});
    this.stream = stream;
    stream.on('data', (list: { serials: string[] }) => {
      this.backoff.reset();
      this.options.onList(new Set(list.serials.map((s) => s.toUpperCase())));
    });
    stream.on('error', (err: grpc.ServiceError) => this.retry(stream, err.details || err.message));
    stream.on('end', () => this.retry(stream, 'stream ended by the control plane'));
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.timer);
    this.stream?.cancel();
    for (const c of this.replicas.clients()) c.close();
  }

  private retry(stream: grpc.ClientReadableStream<unknown>, reason: string): void {
    if (this.stream !== stream) return;
    this.stream = undefined;
    if (this.closed) return;
    this.replicas.failed();
    const delay = this.backoff.next();
    this.options.log.debug({ reason, retryInMs: Math.round(delay) }, 'revocation watch broken; reopening');
    this.timer = setTimeout(() => this.start(), delay);
  }
}
