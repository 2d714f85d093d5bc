import { strict as assert } from 'node:assert';
import * as fc from 'fast-check';
import { stringify } from 'yaml';
import { ValidationError } from '../../src/errors';
import { parseDocuments } from '../../src/documents/documents';
import { decodesOrRefuses, fuzzParameters, suiteTimeoutMs } from './fuzz-budget';

const BINDING_KEYS = ['apiVersion', 'kind', 'name', 'workload', 'device', 'virtual', 'policy', 'policyRef', 'serial', 'settings'];
const POLICY_KEYS = ['name', 'workloads', 'access', 'sharing', 'bytesPerSecond', 'queueDepth', 'priority', 'response', 'timeSliceMs', 'readyPattern'];
const NESTED_KEYS = ['listen', 'protocol', 'name', 'host', 'path', 'baudRate', 'parity', 'terminator', 'pattern', 'selector', 'labels'];

/** Values of every YAML/JSON shape, with the words our enums use mixed in. */
const value: fc.Arbitrary<unknown> = fc.letrec((tie) => ({
  leaf: fc.oneof(
    fc.jsonValue({ maxDepth: 1 }),
    fc.constantFrom('raw', 'rfc2217', 'grpc', 'read-only', 'exclusive', 'broadcast', 'even', '1.5', '127.0.0.1:0', '(a+)+$', '\u0000', '*'),
    fc.double(),
  ),
  obj: fc.dictionary(fc.oneof(fc.constantFrom(...NESTED_KEYS), fc.string({ maxLength: 8 })), tie('node'), { maxKeys: 5 }),
  node: fc.oneof({ depthSize: 'small', withCrossShrink: true }, tie('leaf'), tie('obj'), fc.array(tie('leaf'), { maxLength: 4 })),
})).node;

const document: fc.Arbitrary<Record<string, unknown>> = fc
  .tuple(
    fc.constantFrom('Binding', 'Policy', 'Other', ''),
    fc.constantFrom('devicemesh/v1', 'devicemesh/v2', ''),
    fc.dictionary(fc.constantFrom(...BINDING_KEYS, ...POLICY_KEYS), value, { maxKeys: 8 }),
  )
  .map(([kind, apiVersion, fields]) => ({ apiVersion, kind, ...fields }));

function check(text: string): void {
  const result = decodesOrRefuses(() => parseDocuments(text, 'fuzz.yaml'), [ValidationError]);
  if (result.value) {
    assert.ok(Array.isArray(result.value.bindings) && Array.isArray(result.value.policies));
  } else {
    assert.match(result.error?.message ?? '', /fuzz\.yaml|document|binding|policy/i, 'the error says where');
  }
}

describe('fuzz: YAML documents', function () {
  this.timeout(suiteTimeoutMs(40));

  it('any text: an ApplyRequest or a ValidationError that says where', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string({ maxLength: 400 }), fc.string({ unit: 'binary', maxLength: 200 })), check),
      fuzzParameters(),
    );
  });

  it('documents of the right shape with wrong, odd or missing values, as YAML and as JSON', () => {
    fc.assert(
      fc.property(fc.array(document, { minLength: 1, maxLength: 3 }), fc.boolean(), (docs, asJson) => {
        const text = asJson ? JSON.stringify(docs.length === 1 ? docs[0] : docs) : docs.map((d) => stringify(d)).join('---\n');
        check(text);
      }),
      fuzzParameters(),
    );
  });

  it('YAML that plays with the parser: anchors, aliases, tags, deep nesting, huge numbers', () => {
    const tricky = fc.constantFrom(
      'a: &x [*x]',
      'kind: Binding\nname: !!binary aGVsbG8=',
      'kind: !!js/function "x"',
      `${'['.repeat(200)}${']'.repeat(200)}`,
      'kind: Binding\nname: a\nserial: {baudRate: 1e400}',
      'x: &a [&b [*a]]\ny: *b',
      'kind: Binding\nkind: Policy',
      'kind: Binding\n<<: {name: merged}',
    );
    fc.assert(
      fc.property(tricky, fc.string({ maxLength: 40 }), (base, noise) => {
        check(base);
        check(`${base}\n${noise}`);
      }),
      fuzzParameters(),
    );
  });
});
