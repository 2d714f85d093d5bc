import { DeviceError, errorMessage } from '../../src/errors';
import type { Logger } from '../../src/log';
import type { CommandReply, CommandRequest } from '../../src/socket-plane/device-command';
import { type DeviceEvent, DeviceEventType } from '../../src/socket-plane/device-event';
import type { Stats } from '../../src/telemetry/stats';
import type { AccessMember, DeviceSink, WriteCallback } from '../access/device-access';
import type { DeviceConfig, DeviceDriver, DeviceHandle } from '../drivers/device-driver';
import type { RateMeter } from '../limits/rate-meter';

/** Where the open device's output goes: the one stage after it. */
export interface DeviceOutput {
  fromDevice(chunk: Buffer): void;
  deviceEvent(event: DeviceEvent): void;
  /** The device went away by itself (an error, its stream ended or closed). */
  deviceLost(cause: Error | undefined): void;
}

export interface SharedDeviceOptions {
  path: string;
  driver: DeviceDriver;
  /** The device's measured load: every byte it produces is recorded (writes are, by the gates). */
  meter: RateMeter;
  output: DeviceOutput;
  stats: Stats;
  log: Logger;
  /** The device's configuration as read back after each open and change; {} once it is closed. */
  onConfiguration?: (configuration: Record<string, string>) => void;
}

/**
 * The driver's DeviceHandle of one device, opened once for all its sessions and closed after the
 * last: writes wait for the device's 'drain', the device pauses while any session cannot take its
 * output, its events and output go to the one output stage, and a reopen waits for the previous
 * close, so it never races the lock that one held.
 */
export class SharedDevice implements DeviceSink {
  readonly path: string;
  private handle: DeviceHandle | undefined;
  private opening: Promise<void> | undefined;
  /** Resolves once the last handle is closed. */
  private closing: Promise<void> = Promise.resolve();
  /** Members whose buffer is full: the device stays paused while any is. */
  private readonly blocked = new Set<AccessMember>();
  /** Members whose write waits for the device to drain, in order. */
  private readonly waitingForDrain = new Map<AccessMember, WriteCallback>();

  constructor(private readonly options: SharedDeviceOptions) {
    this.path = options.path;
  }

  get isOpen(): boolean {
    return this.handle !== undefined;
  }

  get frames(): DeviceHandle['frames'] {
    return this.handle?.frames;
  }

  /** Opens the device with `config` unless it is open or opening; `mappingId` is logged. */
  open(config: DeviceConfig, mappingId: string): Promise<void> {
    if (this.handle) return Promise.resolve();
    this.opening ??= this.closing
      .then(() => this.options.driver.open(this.path, config))
      .then(
        (handle) => {
          this.opening = undefined;
          this.attach(handle);
          this.options.log.info({ path: this.path, mapping: mappingId }, 'device opened');
          this.reportConfiguration(handle);
        },
        (err: unknown) => {
          this.opening = undefined;
          throw err;
        },
      );
    return this.opening;
  }

  /** Data path: one device write per piece; the callback waits for 'drain' when the device is full. */
  write(member: AccessMember, chunk: Buffer, callback: WriteCallback): void {
    const handle = this.handle;
    if (!handle) {
      callback(new DeviceError(`device ${this.path} is not open`));
      return;
    }
    if (handle.stream.write(chunk)) callback();
    else this.waitingForDrain.set(member, callback);
  }

  writeRequest(request: Buffer): void {
    this.handle?.stream.write(request);
  }

  hold(member: AccessMember): void {
    this.blocked.add(member);
    this.handle?.stream.pause();
  }

  /** `member` reads again: the device resumes once no member is full. */
  release(member: AccessMember): void {
    if (!this.blocked.delete(member)) return;
    if (this.blocked.size === 0) this.handle?.stream.resume();
  }

  /** `member` left: its waiting write is forgotten and it holds the device no longer. */
  forget(member: AccessMember): void {
    this.waitingForDrain.delete(member);
    this.release(member);
  }

  execute(command: CommandRequest): Promise<CommandReply> {
    const handle = this.handle;
    if (!handle) return Promise.reject(new DeviceError(`device ${this.path} is not open`));
    return handle.execute(command);
  }

  /** Runs a command that changes the device's settings; the endpoint shows what it has after. */
  reconfigure(command: CommandRequest): Promise<CommandReply> {
    const handle = this.handle;
    if (!handle) return Promise.reject(new DeviceError(`device ${this.path} is not open`));
    return handle.execute(command).finally(() => this.reportConfiguration(handle));
  }

  /** Applies a changed configuration; rejects with the driver's reason. @returns false when the device is not open. */
  async update(config: DeviceConfig): Promise<boolean> {
    const handle = this.handle;
    if (!handle) return false;
    try {
      await handle.update(config);
    } finally {
      this.reportConfiguration(handle);
    }
    return true;
  }

  /** Closes the device for `reason` (logged); a no-op when it is not open. */
  close(reason: string): void {
    const handle = this.detach();
    if (!handle) return;
    this.options.log.info({ path: this.path, reason }, 'closing device');
    this.closing = handle.close().catch((err: unknown) => {
      this.options.log.warn({ path: this.path, error: errorMessage(err) }, 'device close failed');
    });
  }

  /** The device is gone: lets go of it quietly. @returns false when it was not open. */
  drop(): boolean {
    const handle = this.detach();
    if (!handle) return false;
    this.closing = handle.close().catch(() => undefined);
    return true;
  }

  /** Resolves once the last close is done. */
  closed(): Promise<void> {
    return this.closing;
  }

  private attach(handle: DeviceHandle): void {
    this.handle = handle;
    const stream = handle.stream;
    stream.on('data', this.onData);
    stream.on('drain', this.onDrain);
    stream.on('error', this.onGone);
    stream.on('end', this.onGone);
    stream.on('close', this.onGone);
    handle.onEvent(this.onEvent);
  }

  /** Detaches from the handle; its later events (our own close included) are not ours. */
  private detach(): DeviceHandle | undefined {
    const handle = this.handle;
    if (!handle) return undefined;
    this.handle = undefined;
    const stream = handle.stream;
    stream.off('data', this.onData);
    stream.off('drain', this.onDrain);
    stream.off('error', this.onGone);
    stream.off('end', this.onGone);
    stream.off('close', this.onGone);
    handle.onEvent(ignore);
    this.options.onConfiguration?.({});
    // A late error from a closing port must not be unhandled.
    stream.on('error', ignore);
    this.blocked.clear();
    return handle;
  }

  /** Reads the device's configuration back and reports it, unless the handle is no longer ours. */
  private reportConfiguration(handle: DeviceHandle): void {
    const report = this.options.onConfiguration;
    if (!report) return;
    handle.configuration().then(
      (configuration) => {
        if (this.handle === handle) report(configuration);
      },
      (err: unknown) => this.options.log.warn({ path: this.path, error: errorMessage(err) }, 'cannot read the device configuration back'),
    );
  }

  private readonly onData = (chunk: Buffer): void => {
    this.options.meter.record(chunk.length);
    this.options.output.fromDevice(chunk);
  };

  private readonly onEvent = (event: DeviceEvent): void => {
    this.options.stats.add('device_events', 1, { device: this.path, type: DeviceEventType[event.type] ?? String(event.type) });
    this.options.output.deviceEvent(event);
  };

  private readonly onDrain = (): void => {
    // Snapshot first: a completed write may start the next one, which can wait again.
    const waiting = [...this.waitingForDrain.values()];
    this.waitingForDrain.clear();
    for (const callback of waiting) callback();
  };

  /** 'error', 'close' (serialport passes the disconnect error) or 'end': no more bytes will come. */
  private readonly onGone = (err?: Error | null): void => {
    this.options.output.deviceLost(err ?? undefined);
  };
}

function ignore(): void {
  // Intentionally empty: see detach.
}
