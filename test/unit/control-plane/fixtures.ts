import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import * as assert from 'node:assert/strict';
import pino from 'pino';
import { ValidationError } from '../../../src/errors';
import type { Logger } from '../../../src/log';
import type { Binding, Host, PhysicalEndpoint, Policy } from '../../../src/proto/types';
import { EMPTY_POLICY } from '../../../src/model/policy-defaults';

export const silentLog: Logger = pino({ level: 'silent' });

export function binding(name: string, overrides: Partial<Binding> = {}): Binding {
  return {
    name,
    workload: 'app1',
    device: { host: 'gw1', path: '/dev/ttyUSB0', id: '' },
    virtual: { workloadId: '', name: `${name}-dev`, protocol: 'VIRTUAL_PROTOCOL_RAW', listen: `127.0.0.1:${7000 + name.length}` },
    policy: null,
    policyRef: '',
    serial: null,
    settings: {},
    ...overrides,
  };
}

export function policy(name: string, overrides: Partial<Policy> = {}): Policy {
  return { ...EMPTY_POLICY, name, ...overrides };
}

export function endpoint(hostId: string, deviceId: string, overrides: Partial<PhysicalEndpoint> = {}): PhysicalEndpoint {
  return {
    id: `${hostId}/${deviceId}`,
    hostId,
    deviceId,
    kind: 'DEVICE_KIND_SERIAL',
    path: deviceId.startsWith('/') ? deviceId : '/dev/ttyUSB0',
    capabilities: [],
    state: 'ENDPOINT_STATE_PRESENT',
    labels: {},
    updatedAt: null,
    configuration: {},
    ...overrides,
  };
}

export function host(id: string, socketPlaneAddress = '127.0.0.1:15020', state: Host['state'] = 'HOST_STATE_CONNECTED'): Host {
  return { id, socketPlaneAddress, state, lastSeen: null };
}

export async function tempDir(prefix = 'devicemesh-cp-'): Promise<string> {
  return fs.mkdtemp(path.join(os.tmpdir(), prefix));
}

export async function removeDir(dir: string): Promise<void> {
  await fs.rm(dir, { recursive: true, force: true });
}

/** Asserts that `fn` throws a ValidationError about `field` whose message matches `reason`. */
export function rejects(fn: () => void, field: string, reason: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof ValidationError, `expected a ValidationError, got ${String(err)}`);
    assert.equal(err.field, field);
    assert.match(err.message, reason);
    return true;
  });
}
