import { SHARING, wordFor } from '../src/documents/enum-names';
import type { DeviceKind, SharingMode } from '../src/proto/types';

/**
 * What each sharing mode needs of a device. `shared` interleaves the consumers' commands in the
 * device's byte stream and routes each response back (request terminator, response framing);
 * `time-slice` hands the byte stream to one consumer at a time. GPIO lines and IIO sensors have
 * no byte stream (they are read and set by structured commands and report events), so neither
 * applies to them; video and audio devices stream but answer no commands, so `shared` does not.
 * `exclusive` and `broadcast` (one writer, every reader gets the device's output) suit every kind.
 */
const REFUSED: Readonly<Partial<Record<DeviceKind, Readonly<Partial<Record<SharingMode, string>>>>>> = {
  DEVICE_KIND_GPIO: {
    SHARING_MODE_SHARED: 'has no byte stream to interleave commands in',
    SHARING_MODE_TIME_SLICE: 'has no byte stream to hand out in turns',
  },
  DEVICE_KIND_SENSOR: {
    SHARING_MODE_SHARED: 'has no byte stream to interleave commands in',
    SHARING_MODE_TIME_SLICE: 'has no byte stream to hand out in turns',
  },
  DEVICE_KIND_VIDEO: { SHARING_MODE_SHARED: 'streams and answers no commands to interleave' },
  DEVICE_KIND_AUDIO: { SHARING_MODE_SHARED: 'streams and answers no commands to interleave' },
};

/** Why a device of `kind` cannot be shared `sharing`-wise, in words; undefined when it can. */
export function sharingRefusal(kind: DeviceKind, sharing: SharingMode): string | undefined {
  const why = REFUSED[kind]?.[sharing];
  if (!why) return undefined;
  const device = kind.replace('DEVICE_KIND_', '').toLowerCase();
  return `${wordFor(SHARING, sharing)} sharing is not possible on a ${device} device: it ${why} (use exclusive, or broadcast for several readers)`;
}
