import { ValidationError } from '../errors';
import * as path from 'node:path';
import type { Binding, Policy, SerialConfig, VirtualEndpoint } from '../proto/types';
import { parseHostPort } from '../util/address';
import { MAX_ROAMING_HOLD_MS } from './policy-defaults';

const NAME = /^[a-z0-9]([-a-z0-9._]{0,61}[a-z0-9])?$/;
const BAUD_MAX = 4_000_000;

function checkName(where: string, field: string, value: string): void {
  if (!value) throw new ValidationError(`${where}: ${field}`, 'is required');
  if (!NAME.test(value)) {
    throw new ValidationError(
      `${where}: ${field}`,
      `"${value}" is not a valid name (lower-case letters, digits, '-', '.', '_'; at most 63 characters)`,
    );
  }
}

/** Checks a serial configuration; unset fields (0 / UNSPECIFIED) mean "use the default". */
export function validateSerial(where: string, serial: SerialConfig): void {
  const b = serial.baudRate;
  if (b !== 0 && (!Number.isInteger(b) || b < 50 || b > BAUD_MAX)) {
    throw new ValidationError(`${where}: serial.baudRate`, `${b} is out of range (50 to ${BAUD_MAX})`);
  }
  if (serial.dataBits !== 0 && ![5, 6, 7, 8].includes(serial.dataBits)) {
    throw new ValidationError(`${where}: serial.dataBits`, `${serial.dataBits} is not one of 5, 6, 7, 8`);
  }
}

export function validatePolicy(where: string, policy: Policy): void {
  if (policy.name) checkName(where, 'name', policy.name);
  if (!/^\d+$/.test(policy.bytesPerSecond || '0')) {
    throw new ValidationError(`${where}: policy.bytesPerSecond`, `"${policy.bytesPerSecond}" is not a non-negative integer`);
  }
  if (policy.queueDepth > 65_536) {
    throw new ValidationError(`${where}: policy.queueDepth`, `${policy.queueDepth} is above the limit of 65536`);
  }
  // Over gRPC the field is a uint32: a value past the bound arrives there without the document reader's check.
  const hold = policy.roamingHoldMs ?? 0;
  if (!Number.isInteger(hold) || hold < 0 || hold > MAX_ROAMING_HOLD_MS) {
    throw new ValidationError(`${where}: policy.roamingHoldMs`, `${hold} is out of range (0 to ${MAX_ROAMING_HOLD_MS})`);
  }
  for (const w of policy.workloads) checkName(where, 'policy.workloads[]', w);
  if (policy.unsolicitedOwner) checkName(where, 'policy.unsolicitedOwner', policy.unsolicitedOwner);
  checkPattern(where, 'policy.readyPattern', policy.readyPattern);
  if (policy.response?.kind === 'RESPONSE_FRAMING_PATTERN') checkResponsePattern(where, policy.response.pattern);
  for (const field of ['burstBytes', 'minBytesPerSecond', 'deviceBytesPerSecond'] as const) {
    if (!/^\d+$/.test(policy[field] || '0')) throw new ValidationError(`${where}: policy.${field}`, `"${policy[field]}" is not a non-negative integer`);
  }
}

/** A regular expression the agent will run against device output: it must compile. */
function checkPattern(where: string, field: string, pattern: string): void {
  if (!pattern) return;
  try {
    new RegExp(pattern);
  } catch (err) {
    throw new ValidationError(`${where}: ${field}`, `is not a regular expression: ${(err as Error).message}`);
  }
}

/** A user or group: a name as useradd takes it, or a numeric id. */
const ACCOUNT = /^(?:[a-z_][a-z0-9_-]{0,31}\$?|\d{1,10})$/;
const MAX_PTY_PATH = 1024;

/** Where a pty or a one-hop socket lives: a clean absolute path. */
function checkEndpointPath(where: string, virtual: VirtualEndpoint, example: string, maxLength: number): void {
  const p = virtual.path;
  const protocol = virtual.oneHop ? 'one-hop' : 'protocol pty';
  if (!p) throw new ValidationError(`${where}: virtual.path`, `is required for ${protocol} (e.g. ${example})`);
  if (p.length > maxLength || !p.startsWith('/') || p.endsWith('/') || p.includes('\0') || path.posix.normalize(p) !== p) {
    throw new ValidationError(`${where}: virtual.path`, `"${p}" is not a clean absolute file path (at most ${maxLength} characters)`);
  }
}

/** Owner and group: names or numeric ids; the mode: permission bits. */
function checkAccount(where: string, virtual: VirtualEndpoint): void {
  for (const field of ['owner', 'group'] as const) {
    const v = virtual[field];
    if (v && !ACCOUNT.test(v)) throw new ValidationError(`${where}: virtual.${field}`, `"${v}" is not a user/group name or a numeric id`);
  }
  const mode = virtual.mode ?? 0;
  if (!Number.isInteger(mode) || mode < 0 || mode > 0o777) {
    throw new ValidationError(`${where}: virtual.mode`, `${mode} is not a file mode (0 to 0777)`);
  }
}

/** A pty is reached by its path, never by an address: a clean absolute path, owner/group/mode that can be set. */
function validatePtyEndpoint(where: string, virtual: VirtualEndpoint): void {
  if (virtual.listen) throw new ValidationError(`${where}: virtual.listen`, 'is not used by protocol pty (it has virtual.path)');
  checkEndpointPath(where, virtual, '/dev/ttyDM0', MAX_PTY_PATH);
  checkAccount(where, virtual);
}

/** What a Unix socket's path may hold (sun_path is 108 bytes with its terminating NUL). */
const MAX_SOCKET_PATH = 107;
const ONE_HOP_PROTOCOLS = new Set(['VIRTUAL_PROTOCOL_RAW', 'VIRTUAL_PROTOCOL_RFC2217']);

/**
 * One hop (docs/one-hop.md): the agent serves a Unix socket in a directory of its own, and the
 * socket's owner is the workload's identity, so the owner is required and the device must name
 * its host (the agent that serves it).
 */
function validateOneHopEndpoint(where: string, binding: Binding, virtual: VirtualEndpoint): void {
  if (!ONE_HOP_PROTOCOLS.has(virtual.protocol)) {
    throw new ValidationError(`${where}: virtual.oneHop`, `serves protocols raw and rfc2217, not ${virtual.protocol}`);
  }
  if (virtual.listen) throw new ValidationError(`${where}: virtual.listen`, 'is not used by one-hop (it has virtual.path, a Unix socket)');
  checkEndpointPath(where, virtual, '/run/devicemesh/app1/modem0.sock', MAX_SOCKET_PATH);
  if (path.posix.dirname(virtual.path ?? '') === '/') {
    throw new ValidationError(`${where}: virtual.path`, 'must be inside a directory of its own (e.g. /run/devicemesh/app1/modem0.sock), which the agent gives to the owner');
  }
  if (!virtual.owner) throw new ValidationError(`${where}: virtual.owner`, 'is required for one-hop: it is the workload\'s identity on the gateway');
  checkAccount(where, virtual);
  if (!binding.device?.host) throw new ValidationError(`${where}: device.host`, 'is required for one-hop: the agent of that host serves the endpoint');
}

/**
 * A response pattern ends a response where it matches; one that matches no bytes at all (`a*`,
 * `^`, `x?`) would end every response at its first byte, so the agent would refuse it: refuse it here.
 */
function checkResponsePattern(where: string, pattern: string): void {
  const field = 'policy.response.pattern';
  if (!pattern) throw new ValidationError(`${where}: ${field}`, 'is empty');
  checkPattern(where, field, pattern);
  if (new RegExp(pattern).test('')) throw new ValidationError(`${where}: ${field}`, `/${pattern}/ matches no bytes at all (it must match at least one byte)`);
}

/** Checks one binding on its own (references and conflicts are the control plane's to check). */
export function validateBinding(binding: Binding): void {
  const where = `binding/${binding.name || '?'}`;
  checkName(where, 'name', binding.name);
  checkName(where, 'workload', binding.workload);
  const device = binding.device;
  if (!device) throw new ValidationError(`${where}: device`, 'is required');
  // Without a host, a device id roams: the binding follows it to whichever gateway reports it.
  if (device.host || !device.id) checkName(where, 'device.host', device.host);
  if (!device.path && !device.id) throw new ValidationError(`${where}: device`, 'needs a path or an id');
  if (device.path && device.id) throw new ValidationError(`${where}: device`, 'takes a path or an id, not both');
  const virtual = binding.virtual;
  if (!virtual) throw new ValidationError(`${where}: virtual`, 'is required');
  checkName(where, 'virtual.name', virtual.name);
  if (virtual.protocol === 'VIRTUAL_PROTOCOL_UNSPECIFIED') {
    throw new ValidationError(`${where}: virtual.protocol`, 'is required (raw, rfc2217, grpc, pty or modbus-tcp)');
  }
  if (virtual.oneHop) validateOneHopEndpoint(where, binding, virtual);
  else if (virtual.protocol === 'VIRTUAL_PROTOCOL_PTY') validatePtyEndpoint(where, virtual);
  else {
    try {
      parseHostPort(virtual.listen);
    } catch (err) {
      throw new ValidationError(`${where}: virtual.listen`, (err as Error).message);
    }
    for (const field of ['path', 'owner', 'group'] as const) {
      if (virtual[field]) throw new ValidationError(`${where}: virtual.${field}`, 'is for protocol pty only');
    }
    if (virtual.mode) throw new ValidationError(`${where}: virtual.mode`, 'is for protocol pty only');
  }
  if (binding.policy) validatePolicy(where, binding.policy);
  if (binding.policyRef) checkName(where, 'policyRef', binding.policyRef);
  if (binding.serial) validateSerial(where, binding.serial);
}
