import { strict as assert } from 'node:assert';
import fc from 'fast-check';
import { parseDocuments } from '../../../src/documents/documents';
import { ValidationError } from '../../../src/errors';

const ONE_HOP = `
kind: Binding
name: app1-modem
workload: app1
device: { host: gw1, path: /dev/ttyUSB0 }
virtual: { name: modem0, protocol: raw, oneHop: true, path: /run/devicemesh/app1/modem0.sock, owner: "1001" }
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

const virtualOf = (text: string): string => ONE_HOP.replace(/virtual: \{.*\}/, `virtual: { ${text} }`);

describe('one-hop binding document', () => {
  it('reads oneHop, the socket path, owner, group and mode', () => {
    const b = parseDocuments(virtualOf('name: modem0, protocol: rfc2217, oneHop: true, path: /run/dm/app1/m.sock, owner: app, group: dialout, mode: "0660"'), 'f').bindings[0]!;
    assert.deepEqual(b.virtual, {
      workloadId: 'app1',
      name: 'modem0',
      protocol: 'VIRTUAL_PROTOCOL_RFC2217',
      listen: '',
      path: '/run/dm/app1/m.sock',
      owner: 'app',
      group: 'dialout',
      mode: 0o660,
      oneHop: true,
    });
  });

  it('leaves oneHop out when false, so bindings without it keep their shape', () => {
    const b = parseDocuments(virtualOf('name: modem0, protocol: raw, listen: 127.0.0.1:7000, oneHop: false'), 'f').bindings[0]!;
    assert.equal('oneHop' in (b.virtual ?? {}), false);
  });

  it('refuses oneHop that is not a boolean', () => expectInvalid(ONE_HOP.replace('oneHop: true', 'oneHop: "yes"'), /virtual\.oneHop: must be true or false/));
  it('refuses protocols other than raw and rfc2217', () => {
    for (const protocol of ['grpc', 'pty', 'modbus-tcp']) {
      expectInvalid(ONE_HOP.replace('protocol: raw', `protocol: ${protocol}`), /virtual\.oneHop: serves protocols raw and rfc2217/);
    }
  });
  it('refuses a one-hop endpoint without a path', () => expectInvalid(ONE_HOP.replace(', path: /run/devicemesh/app1/modem0.sock', ''), /virtual\.path: is required for one-hop/));
  it('refuses a listen address on a one-hop endpoint', () =>
    expectInvalid(ONE_HOP.replace('oneHop: true', 'oneHop: true, listen: 127.0.0.1:7000'), /virtual\.listen: is not used by one-hop/));
  it('refuses a socket directly in /', () => expectInvalid(ONE_HOP.replace('/run/devicemesh/app1/modem0.sock', '/modem0.sock'), /virtual\.path: must be inside a directory of its own/));
  it('refuses a path longer than a Unix socket address holds', () =>
    expectInvalid(ONE_HOP.replace('/run/devicemesh/app1/modem0.sock', `/run/${'a'.repeat(110)}/m.sock`), /not a clean absolute file path \(at most 107 characters\)/));
  it('refuses a relative or unclean path', () => {
    expectInvalid(ONE_HOP.replace('/run/devicemesh/app1/modem0.sock', 'run/m.sock'), /not a clean absolute file path/);
    expectInvalid(ONE_HOP.replace('/run/devicemesh/app1/modem0.sock', '/run/../etc/m.sock'), /not a clean absolute file path/);
  });
  it('refuses a one-hop endpoint without an owner: the owner is the identity', () => expectInvalid(ONE_HOP.replace(', owner: "1001"', ''), /virtual\.owner: is required for one-hop/));
  it('refuses an owner that is no account', () => expectInvalid(ONE_HOP.replace('owner: "1001"', 'owner: "root; rm"'), /virtual\.owner: "root; rm" is not a user\/group name/));
  it('refuses a bad mode', () => expectInvalid(ONE_HOP.replace('owner: "1001"', 'owner: "1001", mode: "0889"'), /virtual\.mode: "0889" is not a file mode/));
  it('refuses a roaming device: only the agent of a named host serves one hop', () =>
    expectInvalid(ONE_HOP.replace('{ host: gw1, path: /dev/ttyUSB0 }', '{ id: "usb-0403:6001:A1" }'), /device\.host: is required for one-hop/));

  it('any path either parses as a clean one-hop socket path or is refused with a ValidationError', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 140 }), (p) => {
        const text = ONE_HOP.replace('path: /run/devicemesh/app1/modem0.sock', `path: ${JSON.stringify(p)}`);
        try {
          const v = parseDocuments(text, 'f').bindings[0]!.virtual!;
          assert.equal(v.path, p);
          assert.ok(p.startsWith('/') && p.length <= 107 && p.lastIndexOf('/') > 0);
        } catch (err) {
          assert.ok(err instanceof ValidationError, String(err));
        }
      }),
      { numRuns: 300 },
    );
  });
});
