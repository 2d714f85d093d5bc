import { ACCESS, FLOW_CONTROL, PARITY, PROTOCOL, SHARING, STOP_BITS } from '../src/documents/enum-names';
import { ValidationError } from '../src/errors';
import type { Binding, DeviceKind, PhysicalEndpoint, Policy, ReportLoadRequest } from '../src/proto/types';
import { parseHostPort } from '../src/util/address';

/**
 * What the control plane checks of a request before it touches the state, beyond
 * src/model/validate.ts (which the CLI shares): things only a gRPC caller can get wrong
 * (enum numbers proto-loader could not name, fields the documents never set) and the
 * register's inputs. Messages read `<document>: <field>: <reason>`.
 */

const DEVICE_KINDS: readonly DeviceKind[] = [
  'DEVICE_KIND_SERIAL',
  'DEVICE_KIND_HID',
  'DEVICE_KIND_GPIO',
  'DEVICE_KIND_SENSOR',
  'DEVICE_KIND_LAB_CARD',
  'DEVICE_KIND_VIDEO',
  'DEVICE_KIND_AUDIO',
];

const CONTROL = /\p{Cc}/u;
const NOT_AN_ID = /[\s/\p{Cc}]/u;

/** An Apply carries at least one document: an empty one is a mistake of the caller's. */
export function checkApplyRequest(documents: { bindings: readonly Binding[]; policies: readonly Policy[] }): void {
  if (documents.bindings.length === 0 && documents.policies.length === 0) throw new ValidationError('', 'nothing to apply: no bindings and no policies');
}

/** Per-document checks of an Apply that validate.ts leaves to the control plane. */
export function checkBindingDocument(binding: Binding): void {
  const where = `binding/${binding.name}`;
  const device = binding.device;
  if (device) {
    text(where, 'device.path', device.path, 4096);
    text(where, 'device.id', device.id, 1024);
  }
  const virtual = binding.virtual;
  if (virtual) {
    if (virtual.workloadId && virtual.workloadId !== binding.workload) {
      throw new ValidationError(`${where}: virtual.workloadId`, `"${virtual.workloadId}" is not the binding's workload "${binding.workload}"; leave it empty`);
    }
    oneOf(where, 'virtual.protocol', virtual.protocol, Object.values(PROTOCOL));
    if (virtual.protocol !== 'VIRTUAL_PROTOCOL_PTY' && !virtual.oneHop && parseHostPort(virtual.listen).port === 0) {
      throw new ValidationError(`${where}: virtual.listen`, 'port 0 would listen on a random port, which the app could not know');
    }
  }
  if (binding.policy) checkPolicyDocument(where, binding.policy);
  const serial = binding.serial;
  if (serial) {
    oneOf(where, 'serial.parity', serial.parity, ['PARITY_UNSPECIFIED', ...Object.values(PARITY)]);
    oneOf(where, 'serial.stopBits', serial.stopBits, ['STOP_BITS_UNSPECIFIED', ...Object.values(STOP_BITS)]);
    oneOf(where, 'serial.flowControl', serial.flowControl, ['FLOW_CONTROL_UNSPECIFIED', ...Object.values(FLOW_CONTROL)]);
  }
}

/** `where` is `policy/<name>`, or the binding whose inline policy this is. */
export function checkPolicyDocument(where: string, policy: Policy): void {
  oneOf(where, 'policy.access', policy.access, ['ACCESS_UNSPECIFIED', ...Object.values(ACCESS)]);
  oneOf(where, 'policy.sharing', policy.sharing, ['SHARING_MODE_UNSPECIFIED', ...Object.values(SHARING)]);
}

/** An endpoint as an agent reports it, before it enters the register. */
export function checkEndpointReport(endpoint: PhysicalEndpoint): void {
  id('endpoint', 'hostId', endpoint.hostId);
  if (!endpoint.deviceId) throw new ValidationError('endpoint: deviceId', 'is required');
  text('endpoint', 'deviceId', endpoint.deviceId, 1024);
  const where = `endpoint/${endpoint.hostId}/${endpoint.deviceId}`;
  if (!endpoint.path) throw new ValidationError(`${where}: path`, 'is required');
  text(where, 'path', endpoint.path, 4096);
  if (endpoint.kind === 'DEVICE_KIND_UNSPECIFIED') throw new ValidationError(`${where}: kind`, `is required (one of ${DEVICE_KINDS.join(', ')})`);
  oneOf(where, 'kind', endpoint.kind, DEVICE_KINDS);
  for (const c of endpoint.capabilities) {
    if (!c) throw new ValidationError(`${where}: capabilities[]`, 'must not be empty');
    text(where, 'capabilities[]', c, 256);
  }
  for (const [field, map] of [['labels', endpoint.labels], ['configuration', endpoint.configuration ?? {}]] as const) {
    for (const [key, value] of Object.entries(map)) {
      if (!key) throw new ValidationError(`${where}: ${field}`, 'a key must not be empty');
      text(where, `${field}.${key}`, key, 256);
      text(where, `${field}.${key}`, value, 1024);
    }
  }
}

/** A whole-host report: every endpoint is the host's own, and each device is listed once. */
export function checkHostReport(hostId: string, endpoints: readonly PhysicalEndpoint[]): void {
  id('', 'hostId', hostId);
  const seen = new Set<string>();
  for (const e of endpoints) {
    if (e.hostId !== hostId) throw new ValidationError(`endpoint/${e.hostId}/${e.deviceId}: hostId`, `is not the reporting host "${hostId}"`);
    checkEndpointReport(e);
    if (seen.has(e.deviceId)) throw new ValidationError(`endpoint/${hostId}/${e.deviceId}`, 'is listed twice');
    seen.add(e.deviceId);
  }
}

/** An agent's load report: its host, each binding and device listed once, rates finite and not negative. */
export function checkLoadReport(report: ReportLoadRequest): void {
  id('', 'hostId', report.hostId);
  const seen = new Set<string>();
  for (const b of report.bindings) {
    if (!b.mappingId) throw new ValidationError('bindings[]: mappingId', 'is required');
    text('bindings[]', 'mappingId', b.mappingId, 1024);
    const where = `bindings[${b.mappingId}]`;
    if (seen.has(b.mappingId)) throw new ValidationError(where, 'is listed twice');
    seen.add(b.mappingId);
    rate(where, 'bytesPerSecond', b.bytesPerSecond);
    rate(where, 'commandsPerSecond', b.commandsPerSecond);
  }
  seen.clear();
  for (const d of report.devices) {
    if (!d.physicalId) throw new ValidationError('devices[]: physicalId', 'is required');
    text('devices[]', 'physicalId', d.physicalId, 1024);
    const where = `devices[${d.physicalId}]`;
    if (seen.has(d.physicalId)) throw new ValidationError(where, 'is listed twice');
    seen.add(d.physicalId);
    rate(where, 'bytesPerSecond', d.bytesPerSecond);
  }
}

/** The filters of ListMappings: empty means any; otherwise an id as hosts and workloads have them. */
export function checkMappingFilter(filter: { workloadId: string; hostId: string }): void {
  if (filter.workloadId) id('', 'workloadId', filter.workloadId);
  if (filter.hostId) id('', 'hostId', filter.hostId);
}

/** A Delete names a kind and a document of it. */
export function checkDeleteRequest(kind: string, name: string): void {
  if (kind !== 'binding' && kind !== 'policy') throw new ValidationError('kind', `"${kind}" is not one of binding, policy`);
  if (!name) throw new ValidationError(`${kind}/?: name`, 'is required');
}

function field(where: string, name: string): string {
  return where ? `${where}: ${name}` : name;
}

function text(where: string, name: string, value: string, max: number): void {
  if (CONTROL.test(value)) throw new ValidationError(field(where, name), `${JSON.stringify(value)} contains control characters`);
  if (value.length > max) throw new ValidationError(field(where, name), `is longer than ${max} characters`);
}

function id(where: string, name: string, value: string): void {
  if (!value) throw new ValidationError(field(where, name), 'is required');
  // Endpoint ids are "<hostId>/<deviceId>": a '/' would make them ambiguous.
  if (NOT_AN_ID.test(value)) throw new ValidationError(field(where, name), `${JSON.stringify(value)} must not contain '/', whitespace or control characters`);
  if (value.length > 253) throw new ValidationError(field(where, name), 'is longer than 253 characters');
}

function rate(where: string, name: string, value: number): void {
  if (!Number.isFinite(value) || value < 0) throw new ValidationError(field(where, name), `${value} is not a finite non-negative rate`);
}

function oneOf(where: string, name: string, value: unknown, allowed: readonly string[]): void {
  if (typeof value !== 'string' || !allowed.includes(value)) {
    throw new ValidationError(field(where, name), `${JSON.stringify(value)} is not one of ${allowed.join(', ')}`);
  }
}
