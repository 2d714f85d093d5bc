import { strict as assert } from 'node:assert';
import fc from 'fast-check';
import { parseDocuments } from '../../../src/documents/documents';
import { ValidationError } from '../../../src/errors';

const GOOD = `
kind: Binding
name: app1-modem
workload: app1
device: { host: gw1, path: /dev/ttyUSB0 }
virtual: { name: modem0, protocol: rfc2217, listen: 127.0.0.1:7000 }
policy: { sharing: exclusive, bytesPerSecond: 0, queueDepth: 64 }
serial: { baudRate: 115200, dataBits: 8, parity: none, stopBits: 1, flowControl: none }
---
kind: Policy
name: lab
workloads: [app1, app2]
sharing: shared
access: read-only
`;

function expectInvalid(text: string, pattern: RegExp): void {
  assert.throws(
    () => parseDocuments(text, 'f.yaml'),
    (err: unknown) => {
      assert.ok(err instanceof ValidationError, `expected ValidationError, got ${String(err)}`);
      assert.match(err.message, pattern);
      return true;
    },
  );
}

describe('documents', () => {
  it('parses the Binding of the spec and a Policy', () => {
    const req = parseDocuments(GOOD, 'f.yaml');
    assert.equal(req.bindings.length, 1);
    assert.equal(req.policies.length, 1);
    const b = req.bindings[0]!;
    assert.equal(b.name, 'app1-modem');
    assert.deepEqual(b.device, { host: 'gw1', path: '/dev/ttyUSB0', id: '' });
    assert.equal(b.virtual?.protocol, 'VIRTUAL_PROTOCOL_RFC2217');
    assert.equal(b.virtual?.workloadId, 'app1');
    assert.equal(b.policy?.sharing, 'SHARING_MODE_EXCLUSIVE');
    assert.equal(b.policy?.queueDepth, 64);
    assert.deepEqual(b.serial, {
      baudRate: 115200,
      dataBits: 8,
      parity: 'PARITY_NONE',
      stopBits: 'STOP_BITS_ONE',
      flowControl: 'FLOW_CONTROL_NONE',
    });
    assert.deepEqual(req.policies[0]!.workloads, ['app1', 'app2']);
    assert.equal(req.policies[0]!.access, 'ACCESS_READ_ONLY');
  });

  it('accepts JSON, one document or a list', () => {
    const one = JSON.stringify({
      kind: 'Binding',
      name: 'b1',
      workload: 'w1',
      device: { host: 'gw1', id: 'usb-0403:6001:A50285BI' },
      virtual: { name: 'v', protocol: 'raw', listen: '127.0.0.1:7001' },
    });
    assert.equal(parseDocuments(one).bindings[0]!.device?.id, 'usb-0403:6001:A50285BI');
    assert.equal(parseDocuments(`[${one}, ${one.replace('"b1"', '"b2"')}]`).bindings.length, 2);
  });

  it('refuses invalid YAML with the line', () => expectInvalid('kind: Binding\nname: [unclosed\n', /f\.yaml: invalid YAML at line \d+/));
  it('refuses an empty file', () => expectInvalid('\n# nothing\n', /contains no documents/));
  it('refuses an unknown kind', () => expectInvalid('kind: Gadget\nname: x\n', /document 1: kind: "Gadget" is not one of Binding, Policy/));
  it('refuses an unknown field, naming it', () =>
    expectInvalid(GOOD.replace('workload: app1', 'workload: app1\nwokload: app2'), /binding\/app1-modem\): wokload: unknown field/));
  it('refuses an unknown nested field', () =>
    expectInvalid(GOOD.replace('baudRate: 115200', 'baudRate: 115200, baud: 9600'), /serial\.baud: unknown field/));
  it('refuses baud 0', () => expectInvalid(GOOD.replace('baudRate: 115200', 'baudRate: 0'), /serial\.baudRate: 0 is out of range/));
  it('refuses parity "maybe"', () =>
    expectInvalid(GOOD.replace('parity: none', 'parity: maybe'), /serial\.parity: "maybe" is not one of none, even, odd, mark, space/));
  it('refuses 9 data bits', () => expectInvalid(GOOD.replace('dataBits: 8', 'dataBits: 9'), /serial\.dataBits: 9 is out of range/));
  it('refuses stop bits 3', () => expectInvalid(GOOD.replace('stopBits: 1', 'stopBits: 3'), /serial\.stopBits: 3 is not one of 1, 2, 1\.5/));
  it('refuses a bad protocol', () => expectInvalid(GOOD.replace('protocol: rfc2217', 'protocol: telnet'), /virtual\.protocol: "telnet"/));
  it('refuses a bad listen address', () => expectInvalid(GOOD.replace('127.0.0.1:7000', 'localhost'), /virtual\.listen: "localhost" is not host:port/));
  describe('protocol pty', () => {
    const PTY = GOOD.replace('{ name: modem0, protocol: rfc2217, listen: 127.0.0.1:7000 }', '{ name: modem0, protocol: pty, path: /dev/ttyDM0 }');
    it('reads path, owner, group and an octal mode string', () => {
      const b = parseDocuments(PTY.replace('path: /dev/ttyDM0', 'path: /dev/ttyDM0, owner: "1000", group: dialout, mode: "0640"'), 'f.yaml').bindings[0]!;
      assert.deepEqual(b.virtual, { workloadId: 'app1', name: 'modem0', protocol: 'VIRTUAL_PROTOCOL_PTY', listen: '', path: '/dev/ttyDM0', owner: '1000', group: 'dialout', mode: 0o640 });
    });
    it('takes a YAML 1.2 octal integer mode', () => assert.equal(parseDocuments(PTY.replace('path: /dev/ttyDM0', 'path: /dev/ttyDM0, mode: 0o600'), 'f').bindings[0]!.virtual?.mode, 0o600));
    it('leaves mode 0 (the sidecar uses 0660) when none is given', () => assert.equal(parseDocuments(PTY, 'f').bindings[0]!.virtual?.mode, 0));
    it('refuses a pty without a path', () => expectInvalid(PTY.replace(', path: /dev/ttyDM0', ''), /virtual\.path: is required for protocol pty/));
    it('refuses a relative path', () => expectInvalid(PTY.replace('/dev/ttyDM0', 'dev/ttyDM0'), /virtual\.path: "dev\/ttyDM0" is not a clean absolute file path/));
    it('refuses a path with ..', () => expectInvalid(PTY.replace('/dev/ttyDM0', '/dev/../etc/passwd'), /virtual\.path: .* is not a clean absolute/));
    it('refuses a path ending in /', () => expectInvalid(PTY.replace('/dev/ttyDM0', '/dev/'), /not a clean absolute/));
    it('refuses a listen address on a pty', () => expectInvalid(PTY.replace('path: /dev/ttyDM0', 'path: /dev/ttyDM0, listen: 127.0.0.1:7000'), /virtual\.listen: is not used by protocol pty/));
    it('refuses a path on a TCP protocol', () => expectInvalid(GOOD.replace('listen: 127.0.0.1:7000', 'listen: 127.0.0.1:7000, path: /dev/ttyDM0'), /virtual\.path: is for protocol pty only/));
    it('refuses a mode on a TCP protocol', () => expectInvalid(GOOD.replace('listen: 127.0.0.1:7000', 'listen: 127.0.0.1:7000, mode: "0600"'), /virtual\.mode: is for protocol pty only/));
    it('refuses a bare 0660, which YAML 1.2 reads as decimal', () => expectInvalid(PTY.replace('path: /dev/ttyDM0', 'path: /dev/ttyDM0, mode: 0660'), /virtual\.mode: "660" is not a file mode: write it as a quoted octal string/));
    it('refuses a mode with a non-octal digit', () => expectInvalid(PTY.replace('path: /dev/ttyDM0', 'path: /dev/ttyDM0, mode: "0689"'), /virtual\.mode: "0689" is not a file mode/));
    it('refuses setuid bits', () => expectInvalid(PTY.replace('path: /dev/ttyDM0', 'path: /dev/ttyDM0, mode: "4755"'), /virtual\.mode: "4755" is not a file mode/));
    it('refuses a mode that is a list', () => expectInvalid(PTY.replace('path: /dev/ttyDM0', 'path: /dev/ttyDM0, mode: [6, 6, 0]'), /virtual\.mode: must be a string/));
    it('refuses an owner that is no account name', () => expectInvalid(PTY.replace('path: /dev/ttyDM0', 'path: /dev/ttyDM0, owner: "root; rm"'), /virtual\.owner: "root; rm" is not a user\/group name or a numeric id/));
    it('refuses a group that is no account name', () => expectInvalid(PTY.replace('path: /dev/ttyDM0', 'path: /dev/ttyDM0, group: "Dial Out"'), /virtual\.group: "Dial Out" is not a user\/group name/));
  });
  it('refuses a missing device', () => expectInvalid(GOOD.replace('device: { host: gw1, path: /dev/ttyUSB0 }\n', ''), /device: is required/));
  it('refuses a device with neither path nor id', () => expectInvalid(GOOD.replace('path: /dev/ttyUSB0', 'path: ""'), /device: needs a path or an id/));
  it('refuses a string where a number belongs', () => expectInvalid(GOOD.replace('queueDepth: 64', 'queueDepth: lots'), /policy\.queueDepth: must be an integer/));
  describe('policy.roamingHoldMs', () => {
    const hold = (value: string): string => GOOD.replace('queueDepth: 64 }', `queueDepth: 64, roamingHoldMs: ${value} }`);
    it('reads a hold within 0 to 3600000 ms', () => {
      assert.equal(parseDocuments(hold('2500'), 'f').bindings[0]!.policy?.roamingHoldMs, 2500);
      assert.equal(parseDocuments(hold('3600000'), 'f').bindings[0]!.policy?.roamingHoldMs, 3_600_000);
      assert.equal(parseDocuments(GOOD, 'f').bindings[0]!.policy?.roamingHoldMs, 0, 'unset: the default hold');
    });
    it('refuses a negative hold', () => expectInvalid(hold('-1'), /document 1 \(binding\/app1-modem\): policy\.roamingHoldMs: -1 is out of range \(0 to 3600000\)/));
    it('refuses a hold that is not a whole number of ms', () => expectInvalid(hold('1.5'), /policy\.roamingHoldMs: must be an integer, not number 1\.5/));
    it('refuses a hold written as a string', () => expectInvalid(hold('"10s"'), /policy\.roamingHoldMs: must be an integer, not string "10s"/));
    it('refuses a hold longer than an hour', () => expectInvalid(hold('3600001'), /policy\.roamingHoldMs: 3600001 is out of range \(0 to 3600000\)/));
    it('refuses a hold in a Policy document too', () => expectInvalid(`${GOOD}roamingHoldMs: 1e12\n`, /document 2 \(policy\/lab\): roamingHoldMs: 1000000000000 is out of range/));
  });
  it('refuses a bad name', () => expectInvalid(GOOD.replace('name: app1-modem', 'name: App1 Modem'), /name: "App1 Modem" is not a valid name/));
  it('refuses duplicate keys', () => expectInvalid('kind: Binding\nkind: Policy\nname: x\n', /invalid YAML/));
  it('names the second document when it is the bad one', () =>
    expectInvalid(GOOD.replace('sharing: shared', 'sharing: sometimes'), /document 2 \(policy\/lab\): sharing: "sometimes"/));

  for (const word of ['constructor', '__proto__', 'toString', 'hasOwnProperty']) {
    it(`refuses the enum word "${word}", which is no own key of the vocabulary`, () => {
      expectInvalid(GOOD.replace('sharing: exclusive', `sharing: ${word}`), new RegExp(`policy\\.sharing: "${word}" is not one of exclusive, shared`));
      expectInvalid(GOOD.replace('parity: none', `parity: ${word}`), new RegExp(`serial\\.parity: "${word}" is not one of none`));
    });
  }

  it('refuses a response pattern that matches no bytes at all', () => {
    for (const pattern of ['a*', '^', 'x?', '(?:OK)?', '$']) {
      expectInvalid(GOOD.replace('queueDepth: 64', `queueDepth: 64, response: { pattern: "${pattern}" }`), /policy\.response\.pattern: .* matches no bytes at all/);
    }
    expectInvalid(GOOD.replace('queueDepth: 64', 'queueDepth: 64, response: { pattern: "(" }'), /policy\.response\.pattern: is not a regular expression/);
    const ok = parseDocuments(GOOD.replace('queueDepth: 64', 'queueDepth: 64, response: { pattern: "OK\\r\\n|ERROR\\r\\n" }'), 'f.yaml');
    assert.equal(ok.bindings[0]?.policy?.response?.pattern, 'OK\r\n|ERROR\r\n');
  });

  describe('custom resources', () => {
    const resource = (kind: string, spec: string): string => `
apiVersion: devicemesh.io/v1alpha1
kind: ${kind}
metadata: { name: app1-modem, generation: 3 }
spec:
  workload: app1
  device: { host: gw1, path: /dev/ttyUSB0 }
  virtual: { name: modem0, protocol: raw, listen: 127.0.0.1:7000 }
${spec}`;

    it('reads a Binding resource as the Binding document it stands for', () => {
      const request = parseDocuments(resource('Binding', ''), 'cr.yaml');
      assert.equal(request.bindings.length, 1);
      assert.equal(request.bindings[0]?.name, 'app1-modem');
    });

    it('refuses spec.kind: a Binding is not applied as a Policy', () =>
      assert.throws(() => parseDocuments(resource('Binding', '  kind: Policy\n'), 'cr.yaml'), /cr\.yaml: document 1: spec\.kind: is not a field of a Binding spec/));

    it('refuses spec.name: metadata.name names the resource', () =>
      assert.throws(() => parseDocuments(resource('Binding', '  name: other\n'), 'cr.yaml'), /spec\.name: is not a field of a Binding spec \(the resource's metadata\.name says it\)/));

    it('refuses a kind that is no own key of the known kinds', () => {
      for (const kind of ['constructor', '__proto__', 'toString']) {
        assert.throws(() => parseDocuments(resource(kind, ''), 'cr.yaml'), (err: unknown) => err instanceof ValidationError && /kind: ".*" is not one of Binding, DevicePolicy/.test(err.message));
      }
    });
  });

  it('never fails with anything but a ValidationError (fuzz)', () => {
    const fragments = fc.constantFrom(
      'kind: Binding\n', 'kind: Policy\n', 'name: a\n', 'workload: w\n', '---\n', 'device: {host: h, path: p}\n',
      'virtual: {name: v, protocol: raw, listen: "127.0.0.1:1"}\n', 'serial: {baudRate: 9600}\n', '[', '{', ': :', '- x\n',
      '"\\u0000"', 'null\n', '&a b\n', '*a\n', '!!binary xx\n', 'policy: {sharing: 7}\n',
    );
    fc.assert(
      fc.property(fc.array(fc.oneof(fragments, fc.string()), { maxLength: 12 }), (parts) => {
        try {
          parseDocuments(parts.join(''), 'fuzz');
        } catch (err) {
          if (!(err instanceof ValidationError)) throw err;
        }
      }),
      { numRuns: 500 },
    );
  });
});
