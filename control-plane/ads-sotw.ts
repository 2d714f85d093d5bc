import type { DiscoveryRequest, DiscoveryResponse, XdsNode } from '../src/proto/types';
import { AdsStream, CONTROL_PLANE_ID, newTypeState, type Prepared, type TypeState } from './ads-stream';
import type { Snapshot } from './snapshot-cache';

interface SotwState extends TypeState {
  /** The snapshot version last written on this stream: acknowledged, in flight or rejected. */
  sentVersion: string;
}

/**
 * The state-of-the-world variant: a wildcard subscription per type (resource_names is not
 * used), every response carries all of the proxy's resources under the proxy's snapshot version.
 * A change that leaves the proxy's resources alone sends it nothing.
 */
export class SotwStream extends AdsStream<DiscoveryRequest, DiscoveryResponse, SotwState> {
  protected nodeOf(request: DiscoveryRequest): XdsNode | null {
    return request.node;
  }

  protected handle(request: DiscoveryRequest): void {
    const { typeUrl, responseNonce } = request;
    if (!this.served(typeUrl)) return;
    const state = this.types.get(typeUrl);
    if (!responseNonce) {
      // A new subscription wants the current state, whatever this stream was sent before.
      this.subscribed({ ...newTypeState(typeUrl, state ? 'subscribe' : 'connect'), sentVersion: '' });
      return;
    }
    if (state) this.answer(state, responseNonce, request.errorDetail);
  }

  protected prepare(state: SotwState, snapshot: Snapshot): Prepared<DiscoveryResponse> | undefined {
    if (snapshot.version === state.sentVersion) return undefined;
    state.sentVersion = snapshot.version;
    return {
      version: snapshot.version,
      summary: { resources: snapshot.resources.length },
      response: (nonce) => ({
        versionInfo: snapshot.version,
        resources: [...snapshot.resources],
        typeUrl: state.typeUrl,
        nonce,
        controlPlane: { identifier: CONTROL_PLANE_ID },
      }),
    };
  }
}
