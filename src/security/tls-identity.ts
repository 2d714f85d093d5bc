import type { SpiffeId } from './spiffe-id';

/** One generation of a process's credentials, all PEM. */
export interface TlsMaterial {
  /** The private key of `cert`. It never leaves the process that made it. */
  key: string;
  /** The leaf certificate, then any intermediates up to (not including) the root. */
  cert: string;
  /** The trust bundle: the CA certificate(s) peers' certificates must chain to. */
  ca: string;
  /** Who `cert` says this process is (its URI SAN). */
  identity: SpiffeId;
  notAfter: Date;
}

/**
 * A process's live credentials. Rotation replaces them; every TLS user (the gRPC channels and
 * servers, the socket plane's listener and dialer) takes `current()` for each new connection
 * and listens for `onRotate` to update its contexts, so established connections keep running.
 */
export interface TlsIdentity {
  current(): TlsMaterial;
  /** Calls `listener` after every rotation with the new material; returns the unsubscribe. */
  onRotate(listener: (material: TlsMaterial) => void): () => void;
}
