import { isIP } from 'node:net';
import * as os from 'node:os';
import { ValidationError } from '../errors';

/** The DNS names and IP addresses by which clients may rightly reach a server. */
export interface ServedNames {
  dns: string[];
  ips: string[];
}

/** What the machine says about itself, injected so that the rules stay pure. */
export interface HostFacts {
  hostname: string;
  /** Every address of every interface, loopback included. */
  interfaceAddresses: string[];
}

export function localHostFacts(): HostFacts {
  const interfaceAddresses = Object.values(os.networkInterfaces())
    .flatMap((list) => list ?? [])
    .map((info) => info.address.replace(/%.*$/, ''));
  return { hostname: os.hostname(), interfaceAddresses };
}

const LOOPBACK_IPS = ['127.0.0.1', '::1'];
const WILDCARD_IPS = new Set(['0.0.0.0', '::']);
/** RFC 1123 labels, optionally one leading wildcard label. */
const DNS_NAME = /^(\*\.)?([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/;

/** True for 127.0.0.0/8, ::1 and `localhost`. */
export function isLoopbackName(host: string): boolean {
  const h = host.toLowerCase();
  return h === 'localhost' || h === '::1' || (isIP(h) === 4 && h.startsWith('127.'));
}

/** One `--san` value: an IP address, or a DNS name (lower-cased); anything else is a ValidationError naming the flag. */
export function parseSan(value: string, flag: string): { kind: 'ip' | 'dns'; value: string } {
  const v = value.trim();
  if (isIP(v) !== 0) return { kind: 'ip', value: canonicalHost(v) };
  const name = v.toLowerCase().replace(/\.$/, '');
  if (name.length === 0 || name.length > 253 || !DNS_NAME.test(name)) {
    throw new ValidationError(flag, `"${value}" is neither an IP address nor a DNS name`);
  }
  return { kind: 'dns', value: name };
}

/**
 * The names of a server listening on `listenHost`: the listen address itself; for loopback, or
 * a wildcard (which loopback clients reach too), `localhost`, 127.0.0.1 and ::1; for a wildcard
 * also every interface address; the machine's host name; and the operator's `extra` names.
 */
export function servedNames(listenHost: string, extra: readonly string[], facts: HostFacts, flag = '--san'): ServedNames {
  const dns = new Set<string>();
  const ips = new Set<string>();
  const add = (value: string): void => {
    const san = parseSan(value, flag);
    (san.kind === 'ip' ? ips : dns).add(san.value);
  };
  // The machine's own names are taken when they are names at all (a host name may hold an underscore).
  const addOwn = (value: string): void => {
    if (isIP(value) !== 0 || DNS_NAME.test(value.toLowerCase().replace(/\.$/, ''))) add(value);
  };
  const wildcard = WILDCARD_IPS.has(listenHost);
  if (!wildcard) addOwn(listenHost);
  if (wildcard || isLoopbackName(listenHost)) {
    dns.add('localhost');
    for (const ip of LOOPBACK_IPS) ips.add(ip);
  }
  if (wildcard) for (const ip of facts.interfaceAddresses) if (isIP(ip) !== 0) ips.add(canonicalHost(ip));
  addOwn(facts.hostname);
  for (const name of extra) add(name);
  return { dns: [...dns], ips: [...ips] };
}

/**
 * The host part of an HTTP `Host:` header (or of any host[:port]) as a browser would have
 * resolved it: lower case, IPv4 in dotted form, IPv6 compressed without brackets. Undefined for
 * a value that is no host.
 */
export function hostOfHeader(value: string): string | undefined {
  try {
    const url = new URL(`http://${value}/`);
    if (url.username !== '' || url.password !== '' || url.pathname !== '/' || url.search !== '') return undefined;
    return url.hostname.replace(/^\[(.*)\]$/, '$1').replace(/\.$/, '');
  } catch {
    return undefined;
  }
}

function canonicalHost(ip: string): string {
  return hostOfHeader(isIP(ip) === 6 ? `[${ip}]` : ip) ?? ip;
}
