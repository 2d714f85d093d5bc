import * as grpc from '@grpc/grpc-js';
import { parseAddressList } from '../util/address';

/** One replica of the control plane: its address and what was dialled for it. */
export interface Replica<T> {
  readonly address: string;
  readonly client: T;
}

/** Failures that say "this replica is not there", not "this request is wrong". */
const REPLICA_DOWN: ReadonlySet<number> = new Set([grpc.status.UNAVAILABLE, grpc.status.DEADLINE_EXCEEDED]);

/** Whether a call's failure means its replica is gone (the next replica may answer), not that the call was refused. */
export function isReplicaDown(err: { code?: number }): boolean {
  return err.code !== undefined && REPLICA_DOWN.has(err.code);
}

/**
 * The replicas of the control plane a client talks to (`a:15010,b:15010`, in order), each dialled
 * once, and which one is in use. Every client of the control plane fails over through this: a
 * replica found gone hands over to the next, round the list; the callers keep their own backoff.
 * Replicas serve the same state, so the next one resumes where the lost one left off.
 */
export class ReplicaSet<T> {
  private readonly replicas: readonly Replica<T>[];
  private index = 0;

  /** Throws a ValidationError when `addresses` is not a list of host:port. */
  constructor(addresses: string, dial: (address: string) => T) {
    this.replicas = parseAddressList(addresses).map((address) => ({ address, client: dial(address) }));
  }

  /** The replica calls go to now. */
  current(): Replica<T> {
    return this.replicas[this.index] as Replica<T>;
  }

  /**
   * `failed` (by default the current one) is gone: calls move on to the next replica. A failure
   * of a replica already left behind moves nothing, so calls failing together skip no replica.
   */
  failed(failed: Replica<T> = this.current()): Replica<T> {
    if (failed === this.current()) this.index = (this.index + 1) % this.replicas.length;
    return this.current();
  }

  /** Every replica's client, e.g. to close them. */
  clients(): T[] {
    return this.replicas.map((r) => r.client);
  }
}
