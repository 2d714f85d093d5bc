import { createHash, timingSafeEqual } from 'node:crypto';
import { UnauthenticatedError, ValidationError } from '../../src/errors';
import { checkIdentityId, type IdentityKind } from '../../src/security/spiffe-id';
import { parseHostPort } from '../../src/util/address';

/** Who a token lets join: exactly one host or one workload. */
export interface TokenSubject {
  kind: Extract<IdentityKind, 'host' | 'workload'>;
  id: string;
}

/** A token as stored: never the secret, only its SHA-256. */
export interface TokenRecord {
  id: string;
  subject: TokenSubject;
  secretSha256: string;
  createdAt: number;
  expiresAt: number;
  /** Joins any number of times until it expires; otherwise one join. Absent in records of older versions: reusable, as they were. */
  reusable?: boolean;
  /** When a single-use token was used. */
  usedAt?: number;
  /** host:port an agent joined with it may advertise; empty or absent: any. */
  allowedAddresses?: string[];
}

/** What a token is made with, besides its subject. */
export interface TokenTerms {
  ttlMs: number;
  reusable: boolean;
  allowedAddresses: readonly string[];
}

/** A token's text, taken apart. */
export interface ParsedToken {
  /** SHA-256 (hex) of the CA certificate the joining process must find the control plane's chain on. */
  caDigest: string;
  id: string;
  secret: string;
}

export const DEFAULT_TOKEN_TTL_MS = 24 * 3600_000;
const TOKEN = /^DMT1-([0-9a-f]{64})-([0-9a-z]{12})-([0-9a-z]{32})$/;
const ALPHABET = '0123456789abcdefghijklmnopqrstuvwxyz';

/** `DMT1-<ca sha256>-<id>-<secret>`, like Docker swarm's join tokens. */
export function formatToken(t: ParsedToken): string {
  return `DMT1-${t.caDigest}-${t.id}-${t.secret}`;
}

/** Parses a token's text; anything else is a ValidationError that does not echo the secret. */
export function parseToken(text: string): ParsedToken {
  const m = TOKEN.exec(typeof text === 'string' ? text.trim() : '');
  if (!m) throw new ValidationError('token', 'is not a devicemesh join token (DMT1-<64 hex>-<12 chars>-<32 chars>)');
  return { caDigest: m[1] as string, id: m[2] as string, secret: m[3] as string };
}

export function sha256Hex(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

/** Compares a secret with a stored SHA-256 in constant time. */
export function secretMatches(secret: string, sha256: string): boolean {
  const a = Buffer.from(sha256Hex(secret), 'hex');
  const b = Buffer.from(sha256, 'hex');
  return a.length === b.length && timingSafeEqual(a, b);
}

/** An allowed socket-plane address is a literal host:port, as the agent advertises it. */
function checkAllowedAddress(address: string): void {
  try {
    parseHostPort(address);
  } catch {
    throw new ValidationError('allowed_addresses', `${JSON.stringify(address)} is not host:port`);
  }
}

/** `n` characters of [0-9a-z] from random bytes (rejection sampling keeps them uniform). */
export function randomText(n: number, randomBytes: (size: number) => Buffer): string {
  let out = '';
  while (out.length < n) {
    for (const byte of randomBytes(n)) {
      if (byte < 252 && out.length < n) out += ALPHABET[byte % 36];
    }
  }
  return out;
}

/**
 * Bootstrap tokens: create, verify, expire, delete. Pure: the clock and randomness are injected,
 * persistence is the caller's (it saves `records()` after each change).
 */
export class BootstrapTokens {
  private readonly byId = new Map<string, TokenRecord>();

  constructor(
    records: Iterable<TokenRecord>,
    private readonly now: () => number,
    private readonly randomBytes: (size: number) => Buffer,
  ) {
    for (const r of records) this.byId.set(r.id, r);
  }

  /** A new token for `subject`, valid for `ttlMs`; the text returned is the only copy of its secret. */
  create(subject: TokenSubject, terms: TokenTerms, caDigest: string): { token: string; record: TokenRecord } {
    const { ttlMs } = terms;
    if (subject.kind !== 'host' && subject.kind !== 'workload') {
      throw new ValidationError('kind', `"${String(subject.kind)}" is neither host nor workload`);
    }
    checkIdentityId(subject.id, subject.kind === 'host' ? 'host id' : 'workload id');
    if (!Number.isFinite(ttlMs) || ttlMs <= 0) throw new ValidationError('ttl', `${ttlMs} ms is not a positive duration`);
    let id: string;
    do id = randomText(12, this.randomBytes);
    while (this.byId.has(id));
    const secret = randomText(32, this.randomBytes);
    const t = this.now();
    for (const address of terms.allowedAddresses) checkAllowedAddress(address);
    if (terms.allowedAddresses.length > 0 && subject.kind !== 'host') {
      throw new ValidationError('allowed_addresses', 'only a host token pins socket-plane addresses');
    }
    const record: TokenRecord = {
      id,
      subject: { kind: subject.kind, id: subject.id },
      secretSha256: sha256Hex(secret),
      createdAt: t,
      expiresAt: t + ttlMs,
      reusable: terms.reusable,
      allowedAddresses: [...terms.allowedAddresses],
    };
    this.byId.set(id, record);
    return { token: formatToken({ caDigest, id, secret }), record };
  }

  /**
   * Redeems a token for a join: its record (a single-use one is marked used, so the caller
   * saves); UnauthenticatedError for an unknown, expired, wrong or used one (the reason says which).
   */
  redeem(token: ParsedToken, caDigest: string): TokenRecord {
    if (token.caDigest !== caDigest) throw new UnauthenticatedError('token was made for another CA');
    const record = this.byId.get(token.id);
    if (!record) throw new UnauthenticatedError(`token ${token.id} is unknown (deleted, or never created here)`);
    if (!secretMatches(token.secret, record.secretSha256)) throw new UnauthenticatedError(`token ${token.id}: wrong secret`);
    const t = this.now();
    if (t >= record.expiresAt) throw new UnauthenticatedError(`token ${token.id} expired at ${new Date(record.expiresAt).toISOString()}`);
    if (record.reusable === false) {
      if (record.usedAt !== undefined) {
        throw new UnauthenticatedError(
          `token ${token.id} is single-use and was used at ${new Date(record.usedAt).toISOString()} (create a new one; --reusable makes one for many joins)`,
        );
      }
      record.usedAt = t;
    }
    return record;
  }

  /** Drops expired tokens; true when any was. */
  expire(): boolean {
    const t = this.now();
    let dropped = false;
    for (const [id, r] of this.byId) {
      if (t >= r.expiresAt) {
        this.byId.delete(id);
        dropped = true;
      }
    }
    return dropped;
  }

  delete(id: string): boolean {
    return this.byId.delete(id);
  }

  records(): TokenRecord[] {
    return [...this.byId.values()].sort((a, b) => a.createdAt - b.createdAt || (a.id < b.id ? -1 : 1));
  }
}
