import { ROOT_CONTEXT } from '@opentelemetry/api';
import type { AccessMember, DeviceSink, WriteCallback } from '../../../../agent/access/device-access';
import { BindingLimits } from '../../../../agent/limits/binding-limits';
import { DeviceCapacity } from '../../../../agent/limits/device-capacity';
import { LimitGate } from '../../../../agent/limits/limit-gate';
import type { DeviceMeshError } from '../../../../src/errors';
import { DEFAULT_POLICY } from '../../../../src/model/policy-defaults';
import type { Policy } from '../../../../src/proto/types';
import { Stats } from '../../../../src/telemetry/stats';
import { mapping } from '../../../integration/agent/fake-control-plane';
import type { VirtualTime } from '../exchange/virtual-time';

/** A session as an access strategy sees it, recording what it gets. */
export interface FakeMember extends AccessMember {
  readonly received: Buffer[];
  readonly refusals: DeviceMeshError[];
  /** false: its buffer is full, deliver() says so. */
  room: boolean;
}

/** A device that takes or holds stream writes, and records requests and holds. */
export class FakeSink implements DeviceSink {
  readonly path = '/dev/ttyFAKE';
  readonly written: Array<{ member: string; bytes: Buffer }> = [];
  readonly requests: Buffer[] = [];
  readonly held: string[] = [];
  frames: { header: Buffer | undefined } | undefined;
  /** Called with each request (the exchange's), e.g. to answer it. */
  onRequest: (request: Buffer) => void = () => undefined;

  write(member: AccessMember, chunk: Buffer, callback: WriteCallback): void {
    this.written.push({ member: member.key, bytes: Buffer.from(chunk) });
    callback();
  }
  writeRequest(request: Buffer): void {
    this.requests.push(Buffer.from(request));
    this.onRequest(request);
  }
  hold(member: AccessMember): void {
    this.held.push(member.key);
  }
}

/** Members of one device, with their bindings' limits and the device's capacity in virtual time. */
export class Members {
  readonly stats = new Stats();
  readonly capacity: DeviceCapacity;
  readonly list: FakeMember[] = [];

  constructor(private readonly time: VirtualTime) {
    this.capacity = new DeviceCapacity(time.now);
  }

  add(key: string, own: Partial<Policy> = {}): FakeMember {
    const m = mapping({ id: key, workloadId: key, devicePath: '/dev/ttyFAKE', policy: { ...DEFAULT_POLICY, ...own } });
    const limits = new BindingLimits(m, this.stats, this.time.now);
    const received: Buffer[] = [];
    const refusals: DeviceMeshError[] = [];
    const readOnly = own.access === 'ACCESS_READ_ONLY';
    const member: FakeMember = {
      key,
      mappingId: key,
      workloadId: key,
      priority: 0,
      weight: own.weight ?? 1,
      readOnly,
      access: { readOnly, units: [] },
      traceContext: ROOT_CONTEXT,
      spanAttributes: {},
      limits,
      gate: new LimitGate(limits, this.capacity.bucket, this.capacity.meter, this.time),
      bytesToDevice: this.stats.counter('bytes_to_device', { mapping: key }),
      writesRefused: this.stats.counter('writes_refused', { mapping: key }),
      framesDropped: this.stats.counter('media_frames_dropped', { mapping: key }),
      primed: false,
      readableLength: 0,
      readableHighWaterMark: 16,
      room: true,
      received,
      refusals,
      deliver(chunk: Buffer): boolean {
        received.push(Buffer.from(chunk));
        return this.room;
      },
      refuse: (err: DeviceMeshError): void => void refusals.push(err),
    };
    this.list.push(member);
    return member;
  }
}

/** A member's write through `write`, as a promise of its callback. */
export function written(write: (callback: WriteCallback) => void): Promise<void> {
  return new Promise((resolve, reject) => write((err) => (err ? reject(err) : resolve())));
}
