import { DO, DONT, type TelnetVerb, WILL, WONT } from './telnet-codes';

/** One side of one option, after RFC 1143 without WANTNO: this server never asks to disable. */
type OptionState = 'no' | 'wantYes' | 'yes';

/**
 * Answers per option and connection. A peer that keeps toggling an option (or two peers that
 * each take the other's answers for requests) would otherwise keep this side answering for ever.
 */
const MAX_ANSWERS_PER_OPTION = 16;

/**
 * The Telnet option negotiation of one connection. It offers its options once at the start and
 * then only answers requests that change a state; unknown options are refused. Past
 * MAX_ANSWERS_PER_OPTION answers for one option it answers that option no more (the state still
 * follows the peer), so no peer can make it loop.
 */
export class TelnetOptions {
  /** Options this side performs (WILL/WONT), by option. */
  private readonly local = new Map<number, OptionState>();
  /** Options the peer performs (DO/DONT), by option. */
  private readonly remote = new Map<number, OptionState>();
  private readonly answers = new Map<number, number>();

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
    const answer = this.transition(verb, option);
    if (!answer) return undefined;
    const sent = (this.answers.get(option) ?? 0) + 1;
    this.answers.set(option, sent);
    return sent <= MAX_ANSWERS_PER_OPTION ? answer : undefined;
  }

  private transition(verb: TelnetVerb, option: number): [TelnetVerb, number] | undefined {
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
