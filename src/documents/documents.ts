import { parseAllDocuments } from 'yaml';
import { ValidationError } from '../errors';
import { validateBinding, validatePolicy } from '../model/validate';
import type { ApplyRequest, Binding, Policy, SerialConfig } from '../proto/types';
import { DocumentReader } from './document-reader';
import { ACCESS, FLOW_CONTROL, PARITY, PROTOCOL, SHARING, STOP_BITS } from './enum-names';

const BINDING_FIELDS = ['apiVersion', 'kind', 'name', 'workload', 'device', 'virtual', 'policy', 'policyRef', 'serial', 'settings'];
const POLICY_FIELDS = ['workloads', 'access', 'sharing', 'bytesPerSecond', 'queueDepth', 'commandTimeoutMs', 'priority', 'pinSerial'];
const SERIAL_FIELDS = ['baudRate', 'dataBits', 'parity', 'stopBits', 'flowControl', 'dtr', 'rts'];

/**
 * Parses a file of Binding and Policy documents (YAML with `---` separators, or JSON: one
 * document or a list) into an ApplyRequest. Every document is checked; the first problem is
 * thrown as a ValidationError naming the document, the field and the reason.
 */
export function parseDocuments(text: string, source = 'input'): ApplyRequest {
  const request: ApplyRequest = { bindings: [], policies: [] };
  const raw = splitDocuments(text, source);
  if (raw.length === 0) throw new ValidationError(source, 'contains no documents');
  raw.forEach((doc, i) => {
    const label = `${source}: document ${i + 1}`;
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
    else values.push(value);
  }
  return values;
}

/** Driver settings: small by design, they travel in every mapping update. */
const MAX_SETTINGS = 64;
const MAX_SETTING_LENGTH = 256;

function readBinding(r: DocumentReader): Binding {
  r.onlyKnown(BINDING_FIELDS);
  const device = r.child('device');
  device?.onlyKnown(['host', 'path', 'id']);
  const virtual = r.child('virtual');
  virtual?.onlyKnown(['name', 'protocol', 'listen']);
  const policy = r.child('policy');
  const serial = r.child('serial');
  const binding: Binding = {
    name: r.string('name', true),
    workload: r.string('workload', true),
    device: device ? { host: device.string('host', true), path: device.string('path'), id: device.string('id') } : null,
    virtual: virtual
      ? {
          workloadId: r.string('workload'),
          name: virtual.string('name', true),
          protocol: virtual.word('protocol', PROTOCOL, 'VIRTUAL_PROTOCOL_RAW'),
          listen: virtual.string('listen', true),
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
  };
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
