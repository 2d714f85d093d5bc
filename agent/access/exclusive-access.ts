import type { SharingMode } from '../../src/proto/types';
import { StreamAccess } from './stream-access';

/** EXCLUSIVE (the default): one session at a time has the device, to read and write. */
export class ExclusiveAccess extends StreamAccess {
  readonly sharing: SharingMode = 'SHARING_MODE_EXCLUSIVE';

  admits(): boolean {
    return this.members.length === 0;
  }

  protected writeRefusal(): undefined {
    return undefined;
  }
}
