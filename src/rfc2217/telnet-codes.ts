/** Telnet's command bytes (RFC 854) and the options this server negotiates. */
export const IAC = 0xff;
export const DONT = 0xfe;
export const DO = 0xfd;
export const WONT = 0xfc;
export const WILL = 0xfb;
export const SB = 0xfa;
export const SE = 0xf0;

/** The four option verbs. */
export type TelnetVerb = typeof WILL | typeof WONT | typeof DO | typeof DONT;

/** RFC 856: an 8-bit data path. */
export const OPT_BINARY = 0;
/** RFC 857: echo (refused: a serial line does not echo). */
export const OPT_ECHO = 1;
/** RFC 858: suppress go-ahead. */
export const OPT_SGA = 3;
/** RFC 2217: the com port control option. */
export const OPT_COM_PORT = 44;

const VERB_NAMES: Readonly<Record<number, string>> = { [WILL]: 'WILL', [WONT]: 'WONT', [DO]: 'DO', [DONT]: 'DONT' };

/** A verb's name, for logs. */
export function verbName(verb: number): string {
  return VERB_NAMES[verb] ?? `0x${verb.toString(16)}`;
}
