import { ValidationError } from '../errors';
import { MAX_ROAMING_HOLD_MS } from '../model/policy-defaults';
import { validateBinding, validatePolicy } from '../model/validate';
import type { ApplyRequest, Binding, Policy, ResponseFraming, ResponseFramingKind, SerialConfig } from '../proto/types';
import { documentFromCustomResource, isCustomResource } from './custom-resource';
import { DocumentReader } from './document-reader';
import { ACCESS, FLOW_CONTROL, OVER_LIMIT, PARITY, PROTOCOL, SHARING, STOP_BITS } from './enum-names';

const BINDING_FIELDS = ['apiVersion', 'kind', 'name', 'workload', 'device', 'virtual', 'policy', 'policyRef', 'serial', 'settings'];
const POLICY_FIELDS = [
  'workloads', 'access', 'sharing', 'bytesPerSecond', 'queueDepth', 'commandTimeoutMs', 'priority', 'pinSerial', 'commandsPerSecond',
  'burstBytes', 'burstCommands', 'overLimit', 'requestTerminator', 'response', 'perConsumerQueue', 'timeSliceMs', 'weight',
  'unsolicitedOwner', 'waitWhenBusy', 'readyPattern', 'minBytesPerSecond', 'deviceBytesPerSecond', 'units',
  'roamingHoldMs',
];
/** A response rule is exactly one of these keys. */
const RESPONSE_FIELDS: Readonly<Record<string, ResponseFramingKind>> = {
  terminator: 'RESPONSE_FRAMING_TERMINATOR',
  fixedLength: 'RESPONSE_FRAMING_FIXED_LENGTH',
  lengthPrefixBytes: 'RESPONSE_FRAMING_LENGTH_PREFIX',
  pattern: 'RESPONSE_FRAMING_PATTERN',
  idleGapMs: 'RESPONSE_FRAMING_IDLE_GAP',
  modbus: 'RESPONSE_FRAMING_MODBUS_RTU',
};
const SERIAL_FIELDS = ['baudRate', 'dataBits', 'parity', 'stopBits', 'flowControl', 'dtr', 'rts'];

/**
 * Parses a file of Binding and Policy documents (YAML with `---` separators, or JSON: one
 * document or a list) into an ApplyRequest. Binding and DevicePolicy custom resources
 * (`kubectl get bindings -o yaml`) read as the documents they stand for. Every document is checked; the first problem is
 * thrown as a ValidationError naming the document, the field and the reason.
 */
export function parseDocuments(text: string, source = 'input'): ApplyRequest {
  const request: ApplyRequest = { bindings: [], policies: [] };
  const raw = splitDocuments(text, source);
  if (raw.length === 0) throw new ValidationError(source, 'contains no documents');
  raw.forEach((value, i) => {
    const label = `${source}: document ${i + 1}`;
    const doc = isCustomResource(value) ? documentFromCustomResource(value, label) : value;
    const head = DocumentReader.of(label, doc);
    const kind = head.string('kind', true);
    const name = head.string('name', true);
    const where = `${label} (${kind.toLowerCase()}/${name})`;
    const reader = DocumentReader.of(where, doc);
    if (kind === 'Binding') request.bindings.push(readBinding(reader));
    else if (kind === 'Policy') request.policies.push(readPolicyDocument(reader));
    else throw new ValidationError(`${label}: kind`, `"${kind}" is not one of Binding, Policy`);
  });
  return request;
}

function splitDocuments(text: string, source: string): unknown[] {
  // Required on first use: of the CLI's commands only apply reads YAML.
  const { parseAllDocuments } = require('yaml') as typeof import('yaml');
  const docs = parseAllDocuments(text, { uniqueKeys: true });
  const values: unknown[] = [];
  for (const doc of Array.isArray(docs) ? docs : [docs]) {
    const err = doc.errors[0];
    if (err) {
      const line = err.linePos?.[0];
      throw new ValidationError(source, `invalid YAML${line ? ` at line ${line.line}, column ${line.col}` : ''}: ${err.message.split('\n')[0]}`);
    }
    let value: unknown;
    try {
      // maxAliasCount bounds alias expansion, so a "billion laughs" file cannot blow up memory.
      value = doc.toJS({ maxAliasCount: 100 });
    } catch (err) {
      throw new ValidationError(source, `invalid YAML: ${(err as Error).message.split('\n')[0]}`);
    }
    if (value === null || value === undefined) continue;
    if (Array.isArray(value)) values.push(...value);
    else if (isKubernetesList(value)) values.push(...value.items);
    else values.push(value);
  }
  return values;
}

/** `kubectl get … -o yaml` prints its objects as a List. */
function isKubernetesList(value: unknown): value is { items: unknown[] } {
  const v = value as { kind?: unknown; items?: unknown };
  return typeof value === 'object' && v.kind === 'List' && Array.isArray(v.items);
}

/** Driver settings: small by design, they travel in every mapping update. */
const MAX_SETTINGS = 64;
const MAX_SETTING_LENGTH = 256;

/**
 * A pty's permission bits: a string of octal digits ("0660"), or a YAML 1.2 octal integer (0o660).
 * A bare 0660 is the decimal 660 in YAML 1.2, so integers above 0o777 are refused, not misread.
 */
function readMode(r: DocumentReader): number {
  if (!r.has('mode')) return 0;
  const text = r.string('mode');
  const bits = /^[0-7]{3,4}$/.test(text) ? parseInt(text, 8) : Number.NaN;
  const value = r.isString('mode') ? bits : Number(text);
  if (!Number.isInteger(value) || value <= 0 || value > 0o777) {
    throw r.error('mode', `${JSON.stringify(text)} is not a file mode: write it as a quoted octal string, e.g. "0660"`);
  }
  return value;
}

function readBinding(r: DocumentReader): Binding {
  r.onlyKnown(BINDING_FIELDS);
  const device = r.child('device');
  device?.onlyKnown(['host', 'path', 'id']);
  const virtual = r.child('virtual');
  virtual?.onlyKnown(['name', 'protocol', 'listen', 'path', 'owner', 'group', 'mode', 'oneHop']);
  const policy = r.child('policy');
  const serial = r.child('serial');
  const binding: Binding = {
    name: r.string('name', true),
    workload: r.string('workload', true),
    device: device ? { host: device.string('host'), path: device.string('path'), id: device.string('id') } : null,
    virtual: virtual
      ? {
          workloadId: r.string('workload'),
          name: virtual.string('name', true),
          protocol: virtual.word('protocol', PROTOCOL, 'VIRTUAL_PROTOCOL_RAW'),
          listen: virtual.string('listen'),
          path: virtual.string('path'),
          owner: virtual.string('owner'),
          group: virtual.string('group'),
          mode: readMode(virtual),
          ...(virtual.boolean('oneHop') ? { oneHop: true } : {}),
        }
      : null,
    policy: policy ? readPolicy(policy, '') : null,
    policyRef: r.string('policyRef'),
    serial: serial ? readSerial(serial) : null,
    settings: r.stringMap('settings', MAX_SETTINGS, MAX_SETTING_LENGTH),
  };
  validateBinding(binding);
  return binding;
}

function readPolicyDocument(r: DocumentReader): Policy {
  r.onlyKnown(['apiVersion', 'kind', 'name', ...POLICY_FIELDS]);
  const policy = readPolicy(r, r.string('name', true));
  validatePolicy(`policy/${policy.name}`, policy);
  return policy;
}

function readPolicy(r: DocumentReader, name: string): Policy {
  if (name === '') r.onlyKnown(POLICY_FIELDS);
  return {
    name,
    workloads: r.stringList('workloads'),
    access: r.word('access', ACCESS, 'ACCESS_UNSPECIFIED'),
    sharing: r.word('sharing', SHARING, 'SHARING_MODE_UNSPECIFIED'),
    bytesPerSecond: String(r.integer('bytesPerSecond', 0, Number.MAX_SAFE_INTEGER)),
    queueDepth: r.integer('queueDepth', 0, 65_536),
    commandTimeoutMs: r.integer('commandTimeoutMs', 0, 3_600_000),
    priority: r.integer('priority', -1000, 1000),
    pinSerial: r.boolean('pinSerial') ?? false,
    commandsPerSecond: r.integer('commandsPerSecond', 0, 1_000_000),
    burstBytes: String(r.integer('burstBytes', 0, Number.MAX_SAFE_INTEGER)),
    burstCommands: r.integer('burstCommands', 0, 1_000_000),
    overLimit: r.word('overLimit', OVER_LIMIT, 'OVER_LIMIT_UNSPECIFIED'),
    requestTerminator: r.string('requestTerminator', false),
    response: readResponseFraming(r),
    perConsumerQueue: r.integer('perConsumerQueue', 0, 65_536),
    timeSliceMs: r.integer('timeSliceMs', 0, 60_000),
    weight: r.integer('weight', 0, 1000),
    unsolicitedOwner: r.string('unsolicitedOwner', false),
    waitWhenBusy: r.boolean('waitWhenBusy') ?? false,
    readyPattern: r.string('readyPattern', false),
    minBytesPerSecond: String(r.integer('minBytesPerSecond', 0, Number.MAX_SAFE_INTEGER)),
    deviceBytesPerSecond: String(r.integer('deviceBytesPerSecond', 0, Number.MAX_SAFE_INTEGER)),
    // Modbus unit ids: 0 (broadcast) to 247.
    units: r.integerList('units', 0, 247),
    roamingHoldMs: r.integer('roamingHoldMs', 0, MAX_ROAMING_HOLD_MS),
  };
}

/** `response: { terminator: "OK\\r\\n" }`, or one of the other rules; absent is null (the default rule). */
function readResponseFraming(policy: DocumentReader): ResponseFraming | null {
  const r = policy.child('response');
  if (!r) return null;
  r.onlyKnown(Object.keys(RESPONSE_FIELDS));
  const given = Object.keys(RESPONSE_FIELDS).filter((key) => r.has(key));
  if (given.length !== 1) throw policy.error('response', `takes exactly one of ${Object.keys(RESPONSE_FIELDS).join(', ')}`);
  const key = given[0] as string;
  const rule: ResponseFraming = { kind: RESPONSE_FIELDS[key] as ResponseFramingKind, terminator: '', length: 0, pattern: '', idleGapMs: 0 };
  if (key === 'terminator') rule.terminator = r.string(key, true);
  else if (key === 'fixedLength') rule.length = r.integer(key, 1, 65_536);
  else if (key === 'lengthPrefixBytes') {
    rule.length = r.integer(key, 1, 4);
    if (rule.length === 3) throw r.error(key, 'is 1, 2 or 4');
  } else if (key === 'pattern') rule.pattern = r.string(key, true);
  else if (key === 'modbus') {
    if (r.string(key, true) !== 'rtu') throw r.error(key, 'is rtu (Modbus RTU framing)');
  } else rule.idleGapMs = r.integer(key, 1, 60_000);
  return rule;
}

function readSerial(r: DocumentReader): SerialConfig {
  r.onlyKnown(SERIAL_FIELDS);
  const dataBits = r.integer('dataBits', 5, 8);
  const config: SerialConfig = {
    baudRate: r.integer('baudRate', 50, 4_000_000),
    dataBits,
    parity: r.word('parity', PARITY, 'PARITY_UNSPECIFIED'),
    stopBits: r.word('stopBits', STOP_BITS, 'STOP_BITS_UNSPECIFIED'),
    flowControl: r.word('flowControl', FLOW_CONTROL, 'FLOW_CONTROL_UNSPECIFIED'),
  };
  const dtr = r.boolean('dtr');
  const rts = r.boolean('rts');
  if (dtr !== undefined) config.dtr = dtr;
  if (rts !== undefined) config.rts = rts;
  return config;
}
