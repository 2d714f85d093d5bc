import { TokenBucket } from '../../src/limits/token-bucket';
import type { Mapping } from '../../src/proto/types';
import { RateMeter } from './rate-meter';

/**
 * The device's own capacity (policy.deviceBytesPerSecond), shared by every binding on it, and its
 * measured load: every byte any session writes, as a stream or as commands, is charged to the
 * bucket and recorded in the meter, as is every byte the device produces.
 */
export class DeviceCapacity {
  readonly bucket: TokenBucket;
  readonly meter: RateMeter;

  constructor(now: () => number = (): number => performance.now()) {
    this.bucket = new TokenBucket(0, 0, now);
    this.meter = new RateMeter(1000, now);
  }

  /** The mapping that opens the device sets its capacity until the device is free again. */
  adopt(mapping: Mapping): void {
    const capacity = Number(mapping.policy?.deviceBytesPerSecond ?? '0');
    this.bucket.configure(capacity, capacity);
  }
}
