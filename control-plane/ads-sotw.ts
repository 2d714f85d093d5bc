import type { DiscoveryRequest, DiscoveryResponse, XdsNode } from '../src/proto/types';
import { WILDCARD } from '../src/xds/delta-messages';
import { AdsStream, CONTROL_PLANE_ID, newTypeState, type Prepared, type TypeState } from './ads-stream';
import type { Snapshot } from './snapshot-cache';

interface SotwState extends TypeState {
  /** The names subscribed to; undefined for a wildcard subscription (no names, or "*"). */
  names: ReadonlySet<string> | undefined;
  /**
   * What was last written on this stream (acknowledged, in flight or rejected): the names and
   * versions of its resources, so a change that leaves them alone sends nothing.
   */
  sent: string | undefined;
}

/**
 * The state-of-the-world variant: every response carries all of the proxy's resources of the
 * subscription under the proxy's snapshot version. `resource_names` is honoured as Envoy's
 * protocol has it: none (or "*") is a wildcard subscription; names restrict the responses to
 * those resources, and a request naming a different set (an ACK or NACK included) is answered
 * with the new set. A change that leaves the subscribed resources alone sends nothing.
 */
export class SotwStream extends AdsStream<DiscoveryRequest, DiscoveryResponse, SotwState> {
  protected nodeOf(request: DiscoveryRequest): XdsNode | null {
    return request.node;
  }

  protected handle(request: DiscoveryRequest): void {
    const { typeUrl, responseNonce } = request;
    if (!this.served(typeUrl)) return;
    const state = this.types.get(typeUrl);
    const names = subscription(request.resourceNames);
    if (!responseNonce) {
      // A new subscription wants the current state, whatever this stream was sent before.
      this.subscribed({ ...newTypeState(typeUrl, state ? 'subscribe' : 'connect'), names, sent: undefined });
      return;
    }
    if (!state) return;
    this.answer(state, responseNonce, request.errorDetail);
    if (!sameNames(state.names, names)) {
      state.names = names;
      state.dirty = true;
      state.triggers.add('subscribe');
      // The new set is answered even while a rejected version waits for the next change.
      state.nackedVersion = '';
    }
  }

  /** What was rejected is not what the proxy holds: the next change is sent even if it leaves the subscribed resources alone. */
  protected override rejected(state: SotwState): void {
    state.sent = undefined;
  }

  protected prepare(state: SotwState, snapshot: Snapshot): Prepared<DiscoveryResponse> | undefined {
    const resources = state.names ? [...state.names].sort().flatMap((name) => snapshot.byName.get(name) ?? []) : [...snapshot.byName.values()];
    const sent = `${state.names ? 'named' : '*'}|${resources.map((r) => `${r.name}@${r.version}`).join(',')}`;
    if (sent === state.sent) {
      this.services.proxies.inSync(this.id, state.typeUrl, snapshot.version);
      return undefined;
    }
    state.sent = sent;
    return {
      version: snapshot.version,
      summary: { resources: resources.length },
      response: (nonce) => ({
        versionInfo: snapshot.version,
        resources: resources.map((r) => r.resource),
        typeUrl: state.typeUrl,
        nonce,
        controlPlane: { identifier: CONTROL_PLANE_ID },
      }),
    };
  }
}

function subscription(resourceNames: readonly string[]): ReadonlySet<string> | undefined {
  if (resourceNames.length === 0 || resourceNames.includes(WILDCARD)) return undefined;
  return new Set(resourceNames);
}

function sameNames(a: ReadonlySet<string> | undefined, b: ReadonlySet<string> | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  return a.size === b.size && [...a].every((name) => b.has(name));
}
