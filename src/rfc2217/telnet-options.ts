import { DO, DONT, type TelnetVerb, WILL, WONT } from './telnet-codes';

/** One side of one option, after RFC 1143 without WANTNO: this server never asks to disable. */
type OptionState = 'no' | 'wantYes' | 'yes';

/**
 * The Telnet option negotiation of one connection. It offers its options once at the start and
 * then only answers requests that change a state, so two peers can never loop; unknown options
 * are refused.
 */
export class TelnetOptions {
  /** Options this side performs (WILL/WONT), by option. */
  private readonly local = new Map<number, OptionState>();
  /** Options the peer performs (DO/DONT), by option. */
  private readonly remote = new Map<number, OptionState>();

  constructor(
    private readonly localSupported: ReadonlySet<number>,
    private readonly remoteSupported: ReadonlySet<number>,
  ) {}

  /** The opening offers: WILL for each local option, DO for each remote one. */
  start(): Array<[TelnetVerb, number]> {
    const out: Array<[TelnetVerb, number]> = [];
    for (const option of this.localSupported) {
      this.local.set(option, 'wantYes');
      out.push([WILL, option]);
    }
    for (const option of this.remoteSupported) {
      this.remote.set(option, 'wantYes');
      out.push([DO, option]);
    }
    return out;
  }

  /** The peer sent `verb option`: returns the answer to send, if any. */
  receive(verb: TelnetVerb, option: number): [TelnetVerb, number] | undefined {
    const isLocal = verb === DO || verb === DONT;
    const states = isLocal ? this.local : this.remote;
    const supported = isLocal ? this.localSupported : this.remoteSupported;
    const yes: TelnetVerb = isLocal ? WILL : DO;
    const no: TelnetVerb = isLocal ? WONT : DONT;
    const state = states.get(option) ?? 'no';
    if (verb === DO || verb === WILL) {
      if (state === 'wantYes') states.set(option, 'yes');
      if (state !== 'no') return undefined;
      if (!supported.has(option)) return [no, option];
      states.set(option, 'yes');
      return [yes, option];
    }
    states.set(option, 'no');
    return state === 'yes' ? [no, option] : undefined;
  }

  /** Whether either side performs `option` now. */
  enabled(option: number): boolean {
    return this.local.get(option) === 'yes' || this.remote.get(option) === 'yes';
  }
}
