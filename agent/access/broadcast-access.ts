import { PermissionDeniedError } from '../../src/errors';
import type { Mapping, SharingMode } from '../../src/proto/types';
import { type AccessMember, sharingOf } from './device-access';
import { StreamAccess } from './stream-access';

/** BROADCAST: every session gets all device output; the first read-write session is the one writer. */
export class BroadcastAccess extends StreamAccess {
  readonly sharing: SharingMode = 'SHARING_MODE_BROADCAST';

  admits(mapping: Mapping): boolean {
    return this.members.length === 0 || sharingOf(mapping) === this.sharing;
  }

  protected writeRefusal(member: AccessMember): PermissionDeniedError | undefined {
    const writer = this.writer();
    if (writer === member) return undefined;
    return new PermissionDeniedError(`device ${this.device.path} is broadcast: only ${writer?.workloadId ?? 'its writer'} writes to it`);
  }

  /** A plain loop: this runs for every chunk, and a predicate closure would be an allocation each time. */
  private writer(): AccessMember | undefined {
    const members = this.members;
    for (let i = 0; i < members.length; i++) if (!(members[i] as AccessMember).readOnly) return members[i];
    return undefined;
  }
}
