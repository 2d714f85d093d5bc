import type { ProxyStatus, SyncState, Timestamp, TypeSyncStatus } from '../src/proto/types';
import { compareStrings } from './canonical';

export interface ProxyInfo {
  nodeId: string;
  kind: string;
  peer: string;
  connectedAt: Timestamp;
}

interface TypeRecord {
  sentVersion: string;
  ackedVersion: string;
  nackedVersion: string;
  nackMessage: string;
}

/**
 * The sync state follows from what was sent, ACKed and NACKed: nothing sent → NOT_SENT; the
 * version sent was rejected → NACKED; it was acknowledged → SYNCED; otherwise it is in flight.
 */
export function syncState(t: TypeRecord): SyncState {
  if (!t.sentVersion) return 'SYNC_STATE_NOT_SENT';
  if (t.nackedVersion === t.sentVersion) return 'SYNC_STATE_NACKED';
  if (t.ackedVersion === t.sentVersion) return 'SYNC_STATE_SYNCED';
  return 'SYNC_STATE_STALE';
}

/** What every open discovery stream has been sent and has answered, per resource type. */
export class ProxyStatusTracker {
  private readonly streams = new Map<number, { info: ProxyInfo; types: Map<string, TypeRecord> }>();

  connected(streamId: number, info: ProxyInfo): void {
    this.streams.set(streamId, { info, types: new Map() });
  }

  disconnected(streamId: number): void {
    this.streams.delete(streamId);
  }

  subscribed(streamId: number, typeUrl: string): void {
    this.type(streamId, typeUrl);
  }

  sent(streamId: number, typeUrl: string, version: string): void {
    const t = this.type(streamId, typeUrl);
    if (t) t.sentVersion = version;
  }

  acked(streamId: number, typeUrl: string, version: string): void {
    const t = this.type(streamId, typeUrl);
    if (!t) return;
    t.ackedVersion = version;
    // A later version applied: the rejection is history.
    t.nackedVersion = '';
    t.nackMessage = '';
  }

  /**
   * The proxy already holds `version` without being sent anything: an incremental stream that
   * reconnected with every resource current, or whose last change brought it back to what it has.
   */
  inSync(streamId: number, typeUrl: string, version: string): void {
    this.sent(streamId, typeUrl, version);
    this.acked(streamId, typeUrl, version);
  }

  nacked(streamId: number, typeUrl: string, version: string, message: string): void {
    const t = this.type(streamId, typeUrl);
    if (!t) return;
    t.nackedVersion = version;
    t.nackMessage = message;
  }

  count(): number {
    return this.streams.size;
  }

  /** Sorted by kind, then node id. */
  list(): ProxyStatus[] {
    return [...this.streams.values()]
      .map(({ info, types }) => ({
        nodeId: info.nodeId,
        kind: info.kind,
        peer: info.peer,
        connectedAt: info.connectedAt,
        types: [...types.entries()]
          .sort(([a], [b]) => compareStrings(a, b))
          .map(([typeUrl, t]): TypeSyncStatus => ({ typeUrl, ...t, state: syncState(t) })),
      }))
      .sort((a, b) => compareStrings(a.kind, b.kind) || compareStrings(a.nodeId, b.nodeId));
  }

  private type(streamId: number, typeUrl: string): TypeRecord | undefined {
    const stream = this.streams.get(streamId);
    if (!stream) return undefined;
    let t = stream.types.get(typeUrl);
    if (!t) {
      t = { sentVersion: '', ackedVersion: '', nackedVersion: '', nackMessage: '' };
      stream.types.set(typeUrl, t);
    }
    return t;
  }
}
