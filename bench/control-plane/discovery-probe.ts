import pino from 'pino';
import { AdsClient } from '../../src/xds/ads-client';
import type { AdsProtocol } from '../../src/xds/protocols';
import { MAPPING_TYPE_URL } from '../../src/xds/type-urls';

/**
 * The protocol an AdsClient asked for `protocol` ends up speaking with this control plane: a
 * client asked for delta falls back to sotw for good when the control plane does not serve it,
 * and a run labelled delta must not silently measure sotw.
 */
export async function protocolServed(address: string, protocol: AdsProtocol): Promise<AdsProtocol> {
  const client = new AdsClient({
    address,
    // A sidecar with no bindings: it changes nothing in the control plane's state.
    identity: { id: 'bench-probe', kind: 'sidecar' },
    handlers: { [MAPPING_TYPE_URL]: (): void => undefined },
    log: pino({ level: 'silent' }),
    protocol,
  });
  let timer: NodeJS.Timeout | undefined;
  try {
    await new Promise<void>((resolve, reject) => {
      timer = setTimeout(() => reject(new Error(`no discovery response within 10 s (protocol ${protocol})`)), 10_000);
      client.once('applied', () => resolve());
      client.start();
    });
    return client.protocolInUse();
  } finally {
    clearTimeout(timer);
    client.stop();
  }
}
