import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import Ajv, { type ValidateFunction } from 'ajv';
import { parseAllDocuments } from 'yaml';
import { documentFromCustomResource } from '../../../src/documents/custom-resource';
import { parseDocuments } from '../../../src/documents/documents';
import { ValidationError } from '../../../src/errors';
import { REPO_ROOT } from '../../helpers/processes';

type Schema = Record<string, unknown>;

function read(...parts: string[]): string {
  return fs.readFileSync(path.join(REPO_ROOT, ...parts), 'utf8');
}

/**
 * The API server rejects fields a schema does not name (kubectl's strict field validation,
 * the default); ajv does the same once every object schema with properties is closed.
 */
function strict(schema: unknown): unknown {
  if (Array.isArray(schema)) return schema.map(strict);
  if (typeof schema !== 'object' || schema === null) return schema;
  const out: Schema = {};
  for (const [k, v] of Object.entries(schema)) out[k] = k === 'properties' ? Object.fromEntries(Object.entries(v as Schema).map(([p, s]) => [p, strict(s)])) : strict(v);
  if (out.properties && out.additionalProperties === undefined) out.additionalProperties = false;
  return out;
}

interface Crd {
  spec: {
    names: { kind: string };
    group: string;
    versions: { name: string; schema: { openAPIV3Schema: Schema }; subresources?: { status?: unknown }; additionalPrinterColumns?: { name: string; jsonPath: string }[] }[];
  };
}

function samples(file: string): Record<string, unknown>[] {
  return parseAllDocuments(read('test', 'fixtures', 'crd', file)).map((d) => d.toJS() as Record<string, unknown>);
}

/** Our own parser's verdict on one custom resource: undefined when accepted. */
function parserVerdict(resource: Record<string, unknown>): string | undefined {
  try {
    parseDocuments(JSON.stringify(resource), 'sample');
    return undefined;
  } catch (err) {
    assert.ok(err instanceof ValidationError, String(err));
    return err.message;
  }
}

describe('CRDs: Binding and DevicePolicy schemas against sample documents', () => {
  const crds = new Map<string, Crd>();
  const validators = new Map<string, ValidateFunction>();

  before(() => {
    // Kubernetes allows `required` inside oneOf naming properties declared beside it (device path or id).
    const ajv = new Ajv({ allErrors: true, strict: true, strictRequired: false });
    for (const doc of parseAllDocuments(read('deploy', 'kubernetes', 'crds.yaml'))) {
      const crd = doc.toJS() as Crd;
      const version = crd.spec.versions[0];
      assert.ok(version);
      crds.set(crd.spec.names.kind, crd);
      validators.set(crd.spec.names.kind, ajv.compile(strict(version.schema.openAPIV3Schema) as Schema));
    }
  });

  const validate = (resource: Record<string, unknown>): string | undefined => {
    const v = validators.get(String(resource.kind));
    assert.ok(v, `no CRD for kind ${String(resource.kind)}`);
    return v(resource) ? undefined : JSON.stringify(v.errors);
  };

  it('defines both kinds in the devicemesh.io group, version v1', () => {
    assert.deepEqual([...crds.keys()].sort(), ['Binding', 'DevicePolicy']);
    for (const crd of crds.values()) {
      assert.equal(crd.spec.group, 'devicemesh.io');
      assert.equal(crd.spec.versions[0]?.name, 'v1');
    }
  });

  it('has the status subresource the controller writes, and printer columns showing phase and device', () => {
    const columns = (kind: string): string[] => (crds.get(kind)?.spec.versions[0]?.additionalPrinterColumns ?? []).map((c) => `${c.name}=${c.jsonPath}`);
    for (const crd of crds.values()) assert.deepEqual(crd.spec.versions[0]?.subresources, { status: {} });
    assert.deepEqual(columns('Binding').slice(0, 2), ['Phase=.status.phase', 'Device=.spec.device.path']);
    assert.ok(columns('Binding').includes('Mapping=.status.mappingId'));
    assert.equal(columns('DevicePolicy')[0], 'Phase=.status.phase');
    // What the controller writes is what the schema takes.
    const written = { phase: 'MAPPED', message: 'mapped', mappingId: 'reader-modem-1a2b', observedGeneration: 3 };
    const [binding] = samples('valid.yaml').filter((r) => r.kind === 'Binding');
    assert.ok(binding);
    assert.equal(validate({ ...binding, status: written }), undefined);
    assert.notEqual(validate({ ...binding, status: { ...written, phase: 'HAPPY' } }), undefined);
  });

  it('accepts every valid sample, as our document parser does', () => {
    const valid = samples('valid.yaml');
    assert.ok(valid.length >= 5);
    for (const resource of valid) {
      const name = (resource.metadata as { name: string }).name;
      assert.equal(validate(resource), undefined, `${name}: CRD schema refused it`);
      assert.equal(parserVerdict(resource), undefined, `${name}: parser refused it`);
    }
    // The whole file, as `devicemesh apply -f` reads it.
    const request = parseDocuments(read('test', 'fixtures', 'crd', 'valid.yaml'), 'valid.yaml');
    assert.deepEqual(request.bindings.map((b) => b.name), ['reader-modem', 'gps-logger-nmea', 'meter-modbus']);
    assert.deepEqual(request.policies.map((p) => p.name), ['modbus-meters', 'lab-instruments']);
    assert.equal(request.bindings[1]?.policy?.sharing, 'SHARING_MODE_BROADCAST');
    assert.equal(request.bindings[1]?.serial?.stopBits, 'STOP_BITS_ONE');
    // What `kubectl get bindings,devicepolicies -o yaml` prints, for `| devicemesh apply -f -`.
    const list = parseDocuments(JSON.stringify({ apiVersion: 'v1', kind: 'List', items: valid }), 'kubectl');
    assert.deepEqual(list, request);
  });

  it('refuses every invalid sample, as our document parser does', () => {
    const invalid = samples('invalid.yaml');
    assert.ok(invalid.length >= 20);
    for (const resource of invalid) {
      const reason = (resource.metadata as { annotations: Record<string, string> }).annotations['test/reason'];
      assert.notEqual(validate(resource), undefined, `${reason}: the CRD schema accepted it`);
      assert.notEqual(parserVerdict(resource), undefined, `${reason}: the parser accepted it`);
    }
  });

  it('names exactly the fields the document parser knows', () => {
    const specProps = (kind: string): string[] => {
      const spec = (crds.get(kind)?.spec.versions[0]?.schema.openAPIV3Schema.properties as Record<string, Schema>).spec as Schema;
      return Object.keys(spec.properties as Schema).sort();
    };
    // The parser lists the fields it knows when it meets one it does not.
    const known = (doc: Record<string, unknown>): string[] => {
      try {
        parseDocuments(JSON.stringify(doc));
      } catch (err) {
        const list = /expected one of: ([^)]*)\)/.exec((err as Error).message)?.[1] ?? '';
        return list.split(', ').filter((f) => !['apiVersion', 'kind', 'name'].includes(f)).sort();
      }
      return assert.fail('the parser took an unknown field');
    };
    assert.deepEqual(specProps('Binding'), known({ kind: 'Binding', name: 'x', zzz: 1 }));
    assert.deepEqual(specProps('DevicePolicy'), known({ kind: 'Policy', name: 'x', zzz: 1 }));
  });

  it('refuses custom resources of another group or kind when converting', () => {
    assert.throws(() => documentFromCustomResource({ apiVersion: 'v1', kind: 'Binding', metadata: { name: 'a' }, spec: {} }, 'r'), /not in the devicemesh\.io group/);
    assert.throws(() => documentFromCustomResource({ apiVersion: 'devicemesh.io/v1', kind: 'Mapping', metadata: {}, spec: {} }, 'r'), /not one of Binding, DevicePolicy/);
    assert.throws(() => documentFromCustomResource({ apiVersion: 'devicemesh.io/v1', kind: 'Binding', metadata: { name: 'a' } }, 'r'), /r: spec: must be a mapping/);
    assert.throws(() => parseDocuments('apiVersion: v1\nkind: Binding\nmetadata: { name: a }\nspec: {}\n', 'f'), /f: document 1: apiVersion: "v1" is not in/);
  });
});
