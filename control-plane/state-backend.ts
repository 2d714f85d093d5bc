import { DeviceMeshError } from '../src/errors';
import type { StateDelta } from './state-delta';
import type { LoadedState, StoredState, StateWrite, WriteReport } from './state-store';

/** What a replica that fell behind reads to catch up: the records since its version, or the whole state when they are gone. */
export type CatchUp = { deltas: StateDelta[] } | { state: StoredState };

/**
 * Where the control plane keeps its state: the embedded data directory (StateStore), or a store
 * that several control-plane replicas share (EtcdStateStore), which also tells each replica of
 * the changes the others commit.
 */
export interface StateBackend {
  /** For logs: the directory, or the etcd endpoints and key prefix. */
  readonly description: string;
  load(): Promise<LoadedState>;
  /**
   * Makes a change durable. A shared store refuses it with StaleStateError when another replica
   * committed that version first: the caller catches up and runs its change again.
   */
  save(write: StateWrite): Promise<WriteReport>;
  /** Shared stores: the records other replicas commit, in version order, from the version loaded on. */
  follow?(listener: (delta: StateDelta) => void, onError: (error: DeviceMeshError) => void): Promise<void>;
  /** Shared stores: everything committed after `version`. */
  catchUp?(version: number): Promise<CatchUp>;
  close?(): Promise<void>;
}

/** Another replica committed the version this write was for. */
export class StaleStateError extends DeviceMeshError {
  constructor(readonly version: number) {
    super('UNAVAILABLE', `control-plane state version ${version} was committed by another replica`);
  }
}
