import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { ListEndpointsResponse } from '../../src/proto/types';
import { listSysfsSerialPorts } from '../../agent/drivers/sysfs-serial-ports';
import { pathWithout } from '../helpers/path-without';
import { cli, freePort, httpGet, MeshProcess, waitFor } from '../helpers/processes';

interface DriverStatus {
  kind: string;
  loaded: boolean;
  devices: number;
  error?: string;
}

/**
 * The real drivers on a machine with no serial adapter and no HID device (these machines have
 * neither) and no udev (udevadm is hidden from the agent's PATH): the agent starts, lists the
 * ports sysfs has, registers nothing it does not watch, and stays up.
 */
describe('e2e: an agent on a machine without devices', function () {
  this.timeout(60_000);

  let tmp: string;
  let cp: string;
  let admin: string;
  let controlPlane: MeshProcess;
  let agent: MeshProcess;
  let noUdev: { PATH: string; remove: () => void };

  before(async () => {
    noUdev = pathWithout('udevadm');
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'dm-nodev-'));
    cp = `127.0.0.1:${await freePort()}`;
    admin = `127.0.0.1:${await freePort()}`;
    controlPlane = MeshProcess.start('e2e-nodev-control-plane', ['control-plane', '--listen', cp, '--admin', `127.0.0.1:${await freePort()}`, '--data-dir', path.join(tmp, 'data')]);
    agent = MeshProcess.start('e2e-nodev-agent', [
      'agent',
      '--host-id', 'bare',
      '--control-plane', cp,
      '--listen', `127.0.0.1:${await freePort()}`,
      '--admin', admin,
      '--watch', '/dev/ttyUSB*',
      '--watch', '/dev/ttyACM*',
      '--watch', 'hid:/dev/hidraw*',
    ], { PATH: noUdev.PATH });
  });

  after(async () => {
    await Promise.all([agent?.stop(), controlPlane?.stop()]);
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
    noUdev?.remove();
  });

  it('loads the serial and HID drivers, finds nothing in the watched globs, registers none, and keeps running', async () => {
    const dump = await waitFor('the agent ready', async () => {
      const r = await httpGet(`http://${admin}/config_dump`).catch(() => undefined);
      const dump = r?.status === 200 ? (JSON.parse(r.body) as { drivers: DriverStatus[]; devices: unknown[] }) : undefined;
      return dump && dump.drivers.length > 0 ? dump : undefined;
    }, 20_000);
    const serial = dump.drivers.find((d) => d.kind === 'DEVICE_KIND_SERIAL');
    const hid = dump.drivers.find((d) => d.kind === 'DEVICE_KIND_HID');
    // Listed from sysfs without udevadm: the same ports as the listing in this process (a legacy /dev/ttyS0 on some machines).
    assert.equal(serial?.loaded, true, serial?.error);
    assert.equal(serial?.devices, (await listSysfsSerialPorts()).length);
    console.log(`      serial listing without udevadm: ${serial?.devices ?? 0} ports (none watched)`);
    assert.ok(hid, 'the HID driver is there');
    if (hid.loaded) assert.equal(hid.devices, 0);
    else console.log(`      HID driver did not load here: ${hid.error ?? ''}`);
    assert.deepEqual(dump.devices, []);
    await waitFor('the host connected', () => {
      const r = cli(['get', 'endpoints', '-o', 'json', '--control-plane', cp]);
      const res = JSON.parse(r.stdout) as ListEndpointsResponse;
      return res.hosts.some((h) => h.id === 'bare' && h.state === 'HOST_STATE_CONNECTED') && !res.endpoints.some((e) => e.hostId === 'bare');
    }, 20_000);
    assert.equal(agent.child.exitCode, null, 'the agent is still running');
  });
});
