import { NotFoundError, UnauthenticatedError } from '../../src/errors';
import type { TokenSubject } from './bootstrap-tokens';

/** One member certificate as the control plane remembers it, until it expires. */
export interface CertificateRecord {
  /** Upper-case hex, as OpenSSL prints it (Node's `serialNumber`). */
  serial: string;
  subject: TokenSubject;
  /** The token of the join this certificate descends from (through renewals). */
  tokenId: string;
  /** The serial of the certificate that join issued: one member process's line of renewals. */
  lineage: string;
  /** What its host may advertise as socket plane (from the token); empty: any. */
  allowedAddresses: string[];
  notAfter: number;
  revoked: boolean;
}

/** The certificates a revocation took away, by identity. */
export interface Revocation {
  subjects: TokenSubject[];
  certificates: number;
}

/** `host/gw1`, `workload/app1`: how an identity is written on the command line. */
export function subjectKey(subject: TokenSubject): string {
  return `${subject.kind}/${subject.id}`;
}

export function normalSerial(serial: string): string {
  return serial.toUpperCase();
}

/**
 * The lineage of every member certificate still valid: which token it came from, what its host
 * may advertise, and whether it was revoked. Pure: the clock is injected, persistence is the
 * caller's (it saves `records()` after each change). Certificates this control plane never
 * recorded (issued before it kept records) are not revoked and pin no address.
 */
export class IssuedCertificates {
  private readonly bySerial = new Map<string, CertificateRecord>();

  constructor(
    records: Iterable<CertificateRecord>,
    private readonly now: () => number,
  ) {
    for (const r of records) this.bySerial.set(normalSerial(r.serial), r);
  }

  /** A certificate issued on a join with `token`. */
  joined(serial: string, token: { id: string; subject: TokenSubject; allowedAddresses?: readonly string[] }, notAfter: number): void {
    this.expire();
    this.put({
      serial,
      subject: token.subject,
      tokenId: token.id,
      lineage: normalSerial(serial),
      allowedAddresses: [...(token.allowedAddresses ?? [])],
      notAfter,
      revoked: false,
    });
  }

  /** A certificate issued on a renewal by the holder of `previous`: it inherits its lineage. */
  renewed(previous: string, serial: string, notAfter: number): void {
    this.expire();
    const old = this.bySerial.get(normalSerial(previous));
    if (!old) return;
    if (old.revoked) throw new UnauthenticatedError(`certificate ${old.serial} of ${subjectKey(old.subject)} is revoked`);
    this.put({ ...old, serial, notAfter });
  }

  /** UnauthenticatedError when the certificate is revoked. */
  check(serial: string): void {
    const r = this.bySerial.get(normalSerial(serial));
    if (r?.revoked) throw new UnauthenticatedError(`certificate ${r.serial} of ${subjectKey(r.subject)} is revoked`);
  }

  /** The socket-plane addresses the certificate's host may advertise; empty: any. */
  allowedAddresses(serial: string): readonly string[] {
    return this.bySerial.get(normalSerial(serial))?.allowedAddresses ?? [];
  }

  /** The join a certificate descends from (its serial); undefined for a certificate not recorded. */
  lineage(serial: string): string | undefined {
    return this.bySerial.get(normalSerial(serial))?.lineage;
  }

  /** Revokes every certificate of the identity; NotFoundError when it has none valid. */
  revokeSubject(subject: TokenSubject): Revocation {
    const key = subjectKey(subject);
    const revoked = this.revokeWhere((r) => subjectKey(r.subject) === key);
    if (revoked.certificates === 0) throw new NotFoundError(`${key} has no certificate that is valid and not revoked`);
    return revoked;
  }

  /** Revokes every certificate that descends from a join with the token. */
  revokeToken(tokenId: string): Revocation {
    return this.revokeWhere((r) => r.tokenId === tokenId);
  }

  /** Serials of the revoked certificates not yet expired. */
  revokedSerials(): string[] {
    return [...this.bySerial.values()].filter((r) => r.revoked && r.notAfter > this.now()).map((r) => r.serial);
  }

  /** Drops expired certificates: the TLS layer refuses them anyway. True when any was. */
  expire(): boolean {
    const t = this.now();
    let dropped = false;
    for (const [serial, r] of this.bySerial) {
      if (r.notAfter <= t) {
        this.bySerial.delete(serial);
        dropped = true;
      }
    }
    return dropped;
  }

  records(): CertificateRecord[] {
    return [...this.bySerial.values()].sort((a, b) => a.notAfter - b.notAfter || (a.serial < b.serial ? -1 : 1));
  }

  private put(record: CertificateRecord): void {
    const serial = normalSerial(record.serial);
    this.bySerial.set(serial, { ...record, serial });
  }

  private revokeWhere(match: (r: CertificateRecord) => boolean): Revocation {
    this.expire();
    const subjects = new Map<string, TokenSubject>();
    let certificates = 0;
    for (const r of this.bySerial.values()) {
      if (r.revoked || !match(r)) continue;
      r.revoked = true;
      certificates++;
      subjects.set(subjectKey(r.subject), r.subject);
    }
    return { subjects: [...subjects.values()], certificates };
  }
}
