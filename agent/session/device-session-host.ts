import { DeviceError, DeviceMeshError, errorMessage } from '../../src/errors';
import type { Logger } from '../../src/log';
import type { TokenBucket } from '../../src/limits/token-bucket';
import type { Mapping } from '../../src/proto/types';
import type { ErrorPayload } from '../../src/socket-plane/control-messages';
import type { CommandReply, CommandRequest } from '../../src/socket-plane/device-command';
import type { DeviceEvent } from '../../src/socket-plane/device-event';
import type { Stats } from '../../src/telemetry/stats';
import { accessFor } from '../access/access-for';
import { type AuthorizedCommand, authorizeCommand } from '../access/command-authorization';
import type { DeviceAccess, WriteCallback } from '../access/device-access';
import { ExclusiveAccess } from '../access/exclusive-access';
import { deviceConfig } from '../device/device-config';
import { type DeviceOutput, SharedDevice } from '../device/shared-device';
import type { DeviceDriver } from '../drivers/device-driver';
import { BindingLimits } from '../limits/binding-limits';
import { DeviceCapacity } from '../limits/device-capacity';
import { LimitGate } from '../limits/limit-gate';
import type { RateMeter } from '../limits/rate-meter';
import { type SessionLane, SessionPort } from './session-port';

export interface DeviceSessionHostOptions {
  path: string;
  driver: DeviceDriver;
  stats: Stats;
  log: Logger;
  /** The device's configuration as read back after each open and change; {} once it is closed. */
  onConfiguration?: (configuration: Record<string, string>) => void;
}

/** How long an OPEN for an exclusively held device waits for the holder to leave before it is refused. */
const EXCLUSIVE_HANDOVER_MS = 1000;

/** One binding's load on its device, as the agent reports it to the control plane. */
export interface BindingLoadSample {
  mappingId: string;
  bytesPerSecond: number;
  commandsPerSecond: number;
  throttled: boolean;
  droppedBytes: number;
  droppedCommands: number;
}

/**
 * One device and the sessions using it: the entry of the agent's device side, as a listener is
 * Envoy's. Each admitted session gets a SessionPort (agent/session), whose bytes go one way:
 *
 *   SessionPort → its lane (here) → the sharing mode's DeviceAccess (agent/access)
 *     → the binding's and the device's LimitGate (agent/limits) → SharedDevice (agent/device)
 *
 * and the device's output the other: SharedDevice → DeviceAccess → SessionPort → session.
 * The first session's mapping picks the access strategy and the device's capacity until the
 * device is free again; the device is opened for the first session and closed after the last.
 */
export class DeviceSessionHost implements DeviceOutput {
  readonly path: string;
  /** Sessions admitted, in order; the first is the one whose configuration opened the device. */
  private readonly ports: SessionPort[] = [];
  /** Opens waiting for every session to leave (see waitForRelease). */
  private readonly releaseWaiters = new Set<() => void>();
  /** Per binding, kept while the device host lives so that rates decay visibly after a session. */
  private readonly limits = new Map<string, BindingLimits>();
  private readonly capacity = new DeviceCapacity();
  private readonly device: SharedDevice;
  private access: DeviceAccess;
  /** What every port's session does goes here, and from here one way down. */
  private readonly lane: SessionLane = {
    write: (port: SessionPort, chunk: Buffer, callback: WriteCallback): void => this.access.write(port, chunk, callback),
    resume: (port: SessionPort): void => this.device.release(port),
    leave: (port: SessionPort): void => this.leave(port),
    execute: (port: SessionPort, command: CommandRequest): Promise<CommandReply> => this.execute(port, command),
  };

  constructor(private readonly options: DeviceSessionHostOptions) {
    this.path = options.path;
    this.device = new SharedDevice({
      path: options.path,
      driver: options.driver,
      meter: this.capacity.meter,
      output: this,
      stats: options.stats,
      log: options.log,
      ...(options.onConfiguration ? { onConfiguration: options.onConfiguration } : {}),
    });
    this.access = new ExclusiveAccess(this.ports, this.device);
  }

  /** The device's own capacity (policy.deviceBytesPerSecond), shared by all its bindings. */
  get deviceBucket(): TokenBucket {
    return this.capacity.bucket;
  }

  /** The device's measured load, both ways. */
  get deviceMeter(): RateMeter {
    return this.capacity.meter;
  }

  get isOpen(): boolean {
    return this.device.isOpen;
  }

  get sessionCount(): number {
    return this.ports.length;
  }

  /** Workload and mapping of each admitted session, for /config_dump. */
  sessions(): Array<{ mappingId: string; workloadId: string }> {
    return this.ports.map((p) => ({ mappingId: p.mappingId, workloadId: p.workloadId }));
  }

  /**
   * Admits a session for `mapping`, opening the device if this is the first. Rejects with a
   * DeviceMeshError the client can be told: RESOURCE_EXHAUSTED when a holder has it that the
   * mapping cannot share it with, DEVICE_ERROR when it does not open. The returned port is
   * attached to the session once the OPEN is accepted, or destroyed if it never is.
   */
  async open(mapping: Mapping): Promise<SessionPort> {
    this.options.driver.validate(deviceConfig(mapping));
    if (!this.access.admits(mapping)) {
      const wait = mapping.policy?.waitWhenBusy ? Math.max(EXCLUSIVE_HANDOVER_MS, mapping.policy.commandTimeoutMs) : EXCLUSIVE_HANDOVER_MS;
      await this.waitForRelease(wait);
    }
    const holder = this.ports[0];
    if (holder && !this.access.admits(mapping)) {
      throw new DeviceMeshError('RESOURCE_EXHAUSTED', `device ${this.path} is in use by ${holder.workloadId}`);
    }
    if (this.ports.length === 0) this.adopt(mapping);
    const limits = this.limitsFor(mapping);
    const gate = new LimitGate(limits, this.capacity.bucket, this.capacity.meter);
    const port = new SessionPort(this.lane, mapping, limits, gate, this.options.stats);
    this.ports.push(port);
    this.access.join(port);
    try {
      await this.device.open(deviceConfig(mapping), mapping.id);
    } catch (err) {
      port.destroy();
      throw err instanceof DeviceMeshError ? err : new DeviceError(`cannot open device ${this.path}: ${errorMessage(err)}`);
    }
    // Every admitted session gave up while it opened.
    if (this.ports.length === 0) this.closeDevice('no session left');
    if (port.destroyed) throw new DeviceError(`device ${this.path} removed`);
    return port;
  }

  /** The first session's mapping sets how the device is shared and its capacity until it is free again. */
  private adopt(mapping: Mapping): void {
    this.capacity.adopt(mapping);
    this.access.close();
    const { stats, log } = this.options;
    this.access = accessFor(mapping, { members: this.ports, device: this.device, capacity: this.capacity, stats, log });
  }

  private limitsFor(mapping: Mapping): BindingLimits {
    let limits = this.limits.get(mapping.id);
    if (!limits) {
      limits = new BindingLimits(mapping, this.options.stats);
      this.limits.set(mapping.id, limits);
    }
    return limits;
  }

  /** A mapping's policy or adaptive limit changed: its buckets take the new rates at once. */
  retune(mapping: Mapping): void {
    this.limits.get(mapping.id)?.retune(mapping);
  }

  /** Each binding's measured load, for the control plane's adaptive limits. */
  loads(): BindingLoadSample[] {
    return [...this.limits].map(([mappingId, l]) => ({
      mappingId,
      bytesPerSecond: l.meter.rate(),
      commandsPerSecond: l.commandMeter.rate(),
      throttled: l.throttled,
      droppedBytes: l.droppedBytes.value,
      droppedCommands: l.droppedCommands.value,
    }));
  }

  /**
   * An app that closes and at once reconnects races its own old session: the sidecar may send the
   * new OPEN before the old CLOSE. A short wait for the holder to leave tells that apart from a
   * device really in use.
   */
  private waitForRelease(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.releaseWaiters.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.releaseWaiters.add(done);
    });
  }

  /**
   * Applies a changed configuration of a mapping that has sessions on the open device; rejects
   * with the driver's reason when the device refuses it.
   * @returns false when there was nothing to apply it to.
   */
  update(mapping: Mapping): Promise<boolean> {
    if (!this.device.isOpen || !this.ports.some((p) => p.mappingId === mapping.id)) return Promise.resolve(false);
    return this.device.update(deviceConfig(mapping));
  }

  /** Resets the sessions of one mapping (its binding was withdrawn or changed). */
  resetMapping(mappingId: string, err: ErrorPayload): void {
    for (const port of [...this.ports]) if (port.mappingId === mappingId) port.fail(err);
    this.limits.delete(mappingId);
  }

  /** The device is gone (unplugged, its pty closed): every session is reset. */
  deviceRemoved(): void {
    this.deviceLost(undefined);
  }

  /** Agent shutdown: resets every session and closes the device. */
  async close(err: ErrorPayload): Promise<void> {
    for (const port of [...this.ports]) port.fail(err);
    await this.device.closed();
  }

  /* ---- the device's output (DeviceOutput) ---- */

  fromDevice(chunk: Buffer): void {
    this.access.fromDevice(chunk);
  }

  deviceEvent(event: DeviceEvent): void {
    for (const port of this.ports) {
      if (!port.sendEvent(event)) this.options.stats.add('device_events_dropped', 1, { device: this.path, reason: 'slow_consumer' });
    }
  }

  deviceLost(cause: Error | undefined): void {
    this.access.fail(new DeviceError(`device ${this.path} removed`));
    if (this.device.isOpen) this.retireAccess();
    const dropped = this.device.drop();
    if (!dropped && this.ports.length === 0) return;
    this.options.log.warn({ path: this.path, error: cause ? errorMessage(cause) : undefined, sessions: this.ports.length }, 'device lost');
    const err: ErrorPayload = { code: 'DEVICE_ERROR', message: `device ${this.path} removed` };
    for (const port of [...this.ports]) port.fail(err);
  }

  /* ---- the lane's own work ---- */

  /** Runs a session's control command as its mapping allows (see authorizeCommand). */
  private execute(port: SessionPort, command: CommandRequest): Promise<CommandReply> {
    if (!this.device.isOpen) return Promise.reject(new DeviceError(`device ${this.path} is not open`));
    let authorized: AuthorizedCommand;
    try {
      authorized = authorizeCommand(port, command, this.path, this.options.stats);
    } catch (err) {
      return Promise.reject(err as Error);
    }
    // An app that changed the device's settings makes the endpoint show what it has now.
    return authorized.reconfigures ? this.device.reconfigure(authorized.command) : this.device.execute(authorized.command);
  }

  private leave(port: SessionPort): void {
    const i = this.ports.indexOf(port);
    if (i < 0) return;
    this.ports.splice(i, 1);
    this.access.leave(port);
    this.device.forget(port);
    if (this.ports.length === 0) {
      this.closeDevice('last session ended');
      for (const wake of [...this.releaseWaiters]) wake();
    }
  }

  private closeDevice(reason: string): void {
    if (!this.device.isOpen) return;
    this.retireAccess();
    this.device.close(reason);
  }

  /** The device closes: what waits in the access strategy fails with it. */
  private retireAccess(): void {
    this.access.fail(new DeviceError(`device ${this.path} closed`));
    this.access.close();
  }
}
