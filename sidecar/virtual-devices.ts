import { DeviceMeshError, errorMessage } from '../src/errors';
import { DEFAULT_POLICY } from '../src/model/policy-defaults';
import type { Mapping } from '../src/proto/types';
import { GrpcDeviceListener } from './grpc-device-listener';
import { checkServable, type ListenerContext, VirtualDeviceListener } from './listener';
import { diffMappings } from './mapping-diff';
import { PtyDevice } from './pty-device';
import type { VirtualListener } from './virtual-listener';

/** A withdrawn roaming mapping's listener outlives its held apps' deadline by this much. */
const LINGER_MARGIN_MS = 1_000;

/** One served virtual device, as /config_dump shows it. */
export interface VirtualDeviceState {
  id: string;
  binding: string;
  version: string;
  protocol: string;
  /** The address actually bound. */
  listen: string;
  agentAddress: string;
  physicalId: string;
  connections: number;
  /** What the device shows beside the mapping (a pty: its /dev/pts path, whether an app has it open, the device's modem lines). */
  port?: Record<string, string>;
}

/**
 * The sidecar's virtual devices, kept in step with the mapping set the control plane pushes.
 * Follows Envoy's listener semantics: whatever can be applied is; a mapping that cannot be served
 * keeps its previous state (its old listener, or none) and is named in the error that NACKs the
 * push. Nothing here reacts to the control plane going away, so the last good set keeps serving.
 */
export class VirtualDevices {
  private readonly listeners = new Map<string, VirtualListener>();
  /** Withdrawn roaming mappings whose apps are held for their device, until it comes back or the hold ends. */
  private readonly lingering = new Map<string, { listener: VirtualListener; timer: NodeJS.Timeout }>();
  private closed = false;

  constructor(private readonly ctx: ListenerContext) {}

  /** Applies a whole mapping set; throws one error naming every mapping it could not apply. */
  async apply(mappings: readonly Mapping[]): Promise<void> {
    const failures: string[] = [];
    this.revive(mappings);
    const previous = new Map([...this.listeners].map(([id, listener]) => [id, listener.mapping]));
    const next = new Map<string, Mapping>();
    const seen = new Set<string>();
    for (const mapping of mappings) {
      try {
        if (seen.has(mapping.id)) throw new DeviceMeshError('INVALID_ARGUMENT', `mapping ${mapping.id}: appears more than once`);
        seen.add(mapping.id);
        checkServable(mapping, this.ctx.workloadId);
        next.set(mapping.id, mapping);
      } catch (err) {
        failures.push(errorMessage(err));
        // Rejected: the mapping keeps what it had, as if this push had not mentioned it.
        const before = previous.get(mapping.id);
        if (before && !next.has(mapping.id)) next.set(mapping.id, before);
      }
    }

    const diff = diffMappings(previous, next);
    await Promise.all(
      diff.removed.map((m) => {
        const listener = this.listeners.get(m.id) as VirtualListener;
        this.listeners.delete(m.id);
        if (m.roaming && listener.withdraw && listener.connectionCount > 0) {
          this.linger(m, listener);
          return Promise.resolve();
        }
        return listener.close(`mapping ${m.id} was withdrawn`);
      }),
    );
    for (const c of diff.changed) if (!c.listenChanged) this.listeners.get(c.next.id)?.update(c.next);
    const toBind = [...diff.added, ...diff.changed.filter((c) => c.listenChanged).map((c) => c.next)];
    failures.push(...(await this.bindAll(toBind)));

    this.ctx.stats.set('listeners', this.listeners.size);
    this.ctx.pool.retain(new Set([...this.listeners.values()].map((l) => l.mapping.agentAddress)));
    if (failures.length > 0) {
      throw new DeviceMeshError('INVALID_ARGUMENT', `${failures.length} of ${mappings.length} mappings not applied: ${failures.join('; ')}`);
    }
  }

  /** Sorted by mapping id. */
  state(): VirtualDeviceState[] {
    return [...this.listeners.values()]
      .map((l) => ({
        id: l.mapping.id,
        binding: l.mapping.binding,
        version: l.mapping.version,
        protocol: l.mapping.virtual?.protocol ?? '',
        listen: l.address,
        agentAddress: l.mapping.agentAddress,
        physicalId: l.mapping.physicalId,
        connections: l.connectionCount,
        ...(l.state ? { port: l.state() } : {}),
      }))
      .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  flushStats(): void {
    for (const listener of this.listeners.values()) listener.flushStats();
  }

  /**
   * Stops accepting on every virtual device, lets live app connections finish for up to
   * `timeoutMs`, then ends what is left.
   */
  async drain(timeoutMs: number): Promise<void> {
    this.closed = true;
    for (const { timer } of this.lingering.values()) clearTimeout(timer);
    const all = [...this.listeners.values(), ...[...this.lingering.values()].map((l) => l.listener)];
    this.listeners.clear();
    this.lingering.clear();
    await Promise.all(all.map((l) => l.drain(timeoutMs, 'sidecar shutting down')));
  }

  /**
   * A roaming mapping withdrawn while apps are connected: its device left one gateway and has not
   * been reported by another yet. The listener stays bound and its apps are held, for the hold's
   * deadline and a margin (so that each held app gets its hold's own error first); then it closes as
   * a withdrawn mapping does.
   */
  private linger(mapping: Mapping, listener: VirtualListener): void {
    listener.withdraw?.();
    const holdMs = mapping.policy?.roamingHoldMs || DEFAULT_POLICY.roamingHoldMs;
    const timer = setTimeout(() => {
      this.lingering.delete(mapping.id);
      void listener.close(`mapping ${mapping.id} was withdrawn and did not come back within ${holdMs} ms`);
    }, holdMs + LINGER_MARGIN_MS);
    this.lingering.set(mapping.id, { listener, timer });
    this.ctx.log.info({ mapping: mapping.id, connections: listener.connectionCount, holdMs }, 'roaming mapping withdrawn: holding its app connections for the device');
  }

  /** Lingering mappings back in the set (the device reappeared) take their listener back, at the same address. */
  private revive(mappings: readonly Mapping[]): void {
    for (const mapping of mappings) {
      const entry = this.lingering.get(mapping.id);
      if (!entry || this.listeners.has(mapping.id)) continue;
      try {
        checkServable(mapping, this.ctx.workloadId);
      } catch {
        continue;
      }
      this.lingering.delete(mapping.id);
      clearTimeout(entry.timer);
      if (mapping.virtual?.listen !== entry.listener.mapping.virtual?.listen || mapping.virtual?.path !== entry.listener.mapping.virtual?.path) {
        void entry.listener.close(`mapping ${mapping.id} came back at another address`);
        continue;
      }
      this.listeners.set(mapping.id, entry.listener);
      entry.listener.update(mapping);
    }
  }

  /**
   * Binds new listeners, a moved device's new one before its old one closes (so a bad address
   * leaves it serving where it was). Passes repeat while they make progress: a device moving
   * onto an address another device of the same push vacates binds once that one has moved.
   * @returns one message per mapping that still could not bind.
   */
  private async bindAll(mappings: Mapping[]): Promise<string[]> {
    let pending = mappings;
    const errors = new Map<string, string>();
    while (pending.length > 0) {
      const failed: Mapping[] = [];
      for (const mapping of pending) {
        try {
          await this.bind(mapping);
        } catch (err) {
          failed.push(mapping);
          errors.set(mapping.id, `mapping ${mapping.id}: cannot listen on ${mapping.virtual?.listen || mapping.virtual?.path}: ${errorMessage(err)}`);
        }
      }
      if (failed.length === pending.length) break;
      pending = failed;
    }
    return pending.map((m) => errors.get(m.id) as string);
  }

  private async bind(mapping: Mapping): Promise<void> {
    // gRPC is an HTTP/2 server of its own, a pty a pseudo-terminal; the TCP protocols share one listener with per-protocol bridges.
    const protocol = mapping.virtual?.protocol;
    const listener: VirtualListener =
      protocol === 'VIRTUAL_PROTOCOL_GRPC'
        ? await GrpcDeviceListener.start(mapping, this.ctx)
        : protocol === 'VIRTUAL_PROTOCOL_PTY'
          ? await PtyDevice.start(mapping, this.ctx)
          : await VirtualDeviceListener.start(mapping, this.ctx);
    if (this.closed) {
      await listener.close('sidecar shutting down');
      return;
    }
    const old = this.listeners.get(mapping.id);
    this.listeners.set(mapping.id, listener);
    if (old) await old.close(`mapping ${mapping.id} moved to ${listener.address}`);
  }
}
