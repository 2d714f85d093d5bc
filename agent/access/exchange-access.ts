import type { DeviceMeshError } from '../../src/errors';
import type { Logger } from '../../src/log';
import type { Mapping, Policy, SharingMode } from '../../src/proto/types';
import type { Stats } from '../../src/telemetry/stats';
import { DeviceExchange, type ExchangeConsumer } from '../exchange/device-exchange';
import type { QueueTimers } from '../exchange/command-queue';
import type { DeviceCapacity } from '../limits/device-capacity';
import { type AccessMember, type DeviceAccess, type DeviceSink, readOnlyRefusal, sharingOf, type WriteCallback } from './device-access';

export interface ExchangeAccessOptions {
  sharing: SharingMode;
  policy: Policy;
  mapping: Mapping;
  members: readonly AccessMember[];
  device: DeviceSink;
  capacity: DeviceCapacity;
  stats: Stats;
  log: Logger;
  /** The exchange's clock and timers; default performance.now() and Node's timers. */
  now?: () => number;
  timers?: QueueTimers;
}

/**
 * SHARED and TIME_SLICE: every member's bytes become commands in one DeviceExchange (agent/exchange:
 * a codec, a bounded queue, a scheduler), each charged to the member's binding and the device's
 * capacity; each response goes back only to its sender, pausing the device while that sender is full.
 */
export class ExchangeAccess implements DeviceAccess {
  readonly sharing: SharingMode;
  private readonly exchange: DeviceExchange;
  private readonly members: readonly AccessMember[];
  private readonly device: DeviceSink;

  constructor(options: ExchangeAccessOptions) {
    this.sharing = options.sharing;
    this.members = options.members;
    const device = options.device;
    this.device = device;
    this.exchange = new DeviceExchange({
      device: device.path,
      policy: options.policy,
      serial: options.mapping.serial,
      write: (request) => device.writeRequest(request),
      deviceBucket: options.capacity.bucket,
      deviceMeter: options.capacity.meter,
      stats: options.stats,
      log: options.log,
      ...(options.now ? { now: options.now } : {}),
      ...(options.timers ? { timers: options.timers } : {}),
    });
  }

  admits(mapping: Mapping): boolean {
    return this.members.length === 0 || sharingOf(mapping) === this.sharing;
  }

  join(member: AccessMember): void {
    const device = this.device;
    const consumer: ExchangeConsumer = {
      key: member.key,
      access: member.access,
      workloadId: member.workloadId,
      priority: member.priority,
      weight: member.weight,
      limits: member.limits,
      spanAttributes: member.spanAttributes,
      // Set once the session is attached, after it joined.
      get traceContext() {
        return member.traceContext;
      },
      receive: (chunk) => {
        if (!member.deliver(chunk)) device.hold(member);
      },
      refuse: (err) => member.refuse(err),
    };
    this.exchange.add(consumer);
  }

  leave(member: AccessMember): void {
    this.exchange.remove(member.key);
  }

  write(member: AccessMember, chunk: Buffer, callback: WriteCallback): void {
    // A codec that tells reads from writes per request (Modbus: FC 1–4 pass) checks read-only itself.
    if (member.readOnly && !this.exchange.checksAccess) {
      callback(readOnlyRefusal(member, this.device));
      return;
    }
    member.bytesToDevice.add(chunk.length);
    this.exchange.write(member.key, chunk, callback);
  }

  fromDevice(chunk: Buffer): void {
    this.exchange.onDeviceData(chunk);
  }

  fail(err: DeviceMeshError): void {
    this.exchange.fail(err);
  }

  close(): void {
    this.exchange.close();
  }
}
