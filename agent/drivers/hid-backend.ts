import { errorMessage, UnavailableError } from '../../src/errors';

// Types only: node-hid itself is required lazily, so that a missing native binding cannot stop the agent.
type NodeHid = typeof import('node-hid');

/** A device as node-hid lists it (its `Device`): keys it has no value for are absent. */
export type HidDeviceInfo = import('node-hid').Device;

/**
 * An open HID device, in the shape of node-hid's HIDAsync: 'data' gives each input report as a
 * Buffer (report id first on a device with numbered reports); 'error' gives the read failure of
 * an unplugged device (node-hid emits a string there, not an Error) and ends the reading.
 */
export interface HidPort {
  write(data: number[] | Buffer): Promise<number>;
  sendFeatureReport(data: number[] | Buffer): Promise<number>;
  getFeatureReport(reportId: number, length: number): Promise<Buffer>;
  getDeviceInfo(): Promise<HidDeviceInfo>;
  close(): Promise<void>;
  on(event: 'data', listener: (report: Buffer) => void): unknown;
  on(event: 'error', listener: (err: unknown) => void): unknown;
}

/** What the HID driver needs of node-hid: its device listing and HIDAsync.open(path). */
export interface HidBackend {
  devices(): Promise<HidDeviceInfo[]>;
  open(path: string): Promise<HidPort>;
}

export interface HidAvailability {
  loaded: boolean;
  error?: string;
}

/** node-hid loads its native binding on first use; asking the hidapi version forces that, so a missing binary or library fails here. */
function loadNodeHid(): NodeHid {
  const hid = require('node-hid') as NodeHid;
  hid.getHidapiVersion();
  return hid;
}

/** The production backend: node-hid's devicesAsync() and HIDAsync, loaded on first use, once per process. */
export class NodeHidBackend implements HidBackend {
  private loaded: { hid: NodeHid } | { error: string } | undefined;

  constructor(private readonly load: () => NodeHid = loadNodeHid) {}

  availability(): HidAvailability {
    const loaded = this.loadOnce();
    return 'hid' in loaded ? { loaded: true } : { loaded: false, error: loaded.error };
  }

  async devices(): Promise<HidDeviceInfo[]> {
    return this.hid().devicesAsync();
  }

  async open(path: string): Promise<HidPort> {
    return this.hid().HIDAsync.open(path);
  }

  private hid(): NodeHid {
    const loaded = this.loadOnce();
    if ('error' in loaded) throw new UnavailableError(`HID unavailable: ${loaded.error}`);
    return loaded.hid;
  }

  private loadOnce(): { hid: NodeHid } | { error: string } {
    if (!this.loaded) {
      try {
        this.loaded = { hid: this.load() };
      } catch (err) {
        this.loaded = { error: errorMessage(err) };
      }
    }
    return this.loaded;
  }
}

/** The one node-hid of the agent. */
export const nodeHidBackend = new NodeHidBackend();

/** Whether node-hid loaded on this machine, and why not. */
export function hidAvailability(): HidAvailability {
  return nodeHidBackend.availability();
}
