import { DeviceError, type DeviceMeshError } from '../../src/errors';
import type { Mapping, SharingMode } from '../../src/proto/types';
import type { WriteFn } from '../limits/limit-gate';
import { type AccessMember, type DeviceAccess, type DeviceSink, readOnlyRefusal, type WriteCallback } from './device-access';
import { fanOutFrame } from './frame-fanout';

/**
 * The device as one byte stream, as exclusive and broadcast share it: a member's bytes go through
 * its gate to the device, and the device's output goes to every member (each framed-capture unit
 * whole or dropped, see fanOutFrame), the device paused while any member is full.
 */
export abstract class StreamAccess implements DeviceAccess {
  abstract readonly sharing: SharingMode;
  /** Each member's stream write to the device, made once when it joins. */
  private readonly sinks = new Map<AccessMember, WriteFn>();

  constructor(
    protected readonly members: readonly AccessMember[],
    protected readonly device: DeviceSink,
  ) {}

  abstract admits(mapping: Mapping): boolean;

  /** Why `member` may not write to the device now; undefined when it may. */
  protected abstract writeRefusal(member: AccessMember): DeviceMeshError | undefined;

  join(member: AccessMember): void {
    const device = this.device;
    this.sinks.set(member, (piece, callback) => device.write(member, piece, callback));
  }

  leave(member: AccessMember): void {
    this.sinks.delete(member);
  }

  write(member: AccessMember, chunk: Buffer, callback: WriteCallback): void {
    if (member.readOnly) {
      callback(readOnlyRefusal(member, this.device));
      return;
    }
    member.bytesToDevice.add(chunk.length);
    const sink = this.sinks.get(member);
    const refused = sink ? this.writeRefusal(member) : new DeviceError(`session ${member.key} has left device ${this.device.path}`);
    if (refused || !sink) {
      callback(refused);
      return;
    }
    member.gate.write(chunk, sink, callback);
  }

  fromDevice(chunk: Buffer): void {
    const device = this.device;
    const members = this.members;
    const frames = device.frames;
    if (frames) {
      fanOutFrame(members, chunk, frames.header);
      return;
    }
    for (let i = 0; i < members.length; i++) {
      const member = members[i] as AccessMember;
      if (!member.deliver(chunk)) device.hold(member);
    }
  }

  fail(): void {
    // A stream write waiting on the device ends with its session.
  }

  close(): void {
    this.sinks.clear();
  }
}
