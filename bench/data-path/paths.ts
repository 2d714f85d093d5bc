import { autoDetect } from '@serialport/bindings-cpp';
import type { BindingInterface } from '@serialport/bindings-interface';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import type { Duplex } from 'node:stream';
import { EventLoopSerialStream } from '../../agent/drivers/event-loop-serial-stream';
import { openSerialStream } from '../../agent/drivers/open-serial-stream';
import { accepts, Child, freePort, waitFor } from './children';
import { LINE } from './line-settings';
import { DeviceMesh } from './mesh';
import { PtyEcho } from './pty-echo';
import { Ser2net } from './ser2net';

/**
 * The ways from the app to the echo device, compared in one run:
 * - direct: the app opens the pty itself with serialport (the physical limit, as the issue sets it);
 * - direct-event-loop (not run by default): the app opens the pty with the agent's own serial
 *   stream, reading and writing on the event loop: what an app on the pty can do at best in Node;
 * - ser2net: TCP to ser2net as packaged (its defaults), then the pty (the peer);
 * - ser2net-tuned: the same with ser2net set for speed (no chardelay, 64 KiB buffers, TCP_NODELAY);
 * - node-relay: TCP to one Node process that pipes it to the pty with the
 *   agent's serial stream and nothing else: the floor of any proxy written in Node;
 * - devicemesh: TCP to the sidecar's virtual device → socket plane (mTLS, the default) → agent → the pty (two hops);
 * - devicemesh-one-hop: the agent's own one-hop Unix socket → agent → the pty, no sidecar (docs/one-hop.md);
 * - devicemesh-plaintext (not run by default): the same with every process --insecure, to show what mTLS costs;
 * - devicemesh-pty (not run by default; `npm run bench:pty` runs it beside direct and devicemesh):
 *   the app opens the sidecar's virtual serial port (protocol pty) with serialport, then the same way on.
 */
export const PATH_NAMES = ['direct', 'direct-event-loop', 'ser2net', 'ser2net-tuned', 'node-relay', 'devicemesh', 'devicemesh-one-hop', 'devicemesh-plaintext', 'devicemesh-pty'] as const;
export type PathName = (typeof PATH_NAMES)[number];
/** The paths of a run that does not name them. */
export const DEFAULT_PATHS: readonly PathName[] = ['direct', 'ser2net', 'ser2net-tuned', 'node-relay', 'devicemesh', 'devicemesh-one-hop'];

export const PATH_DESCRIPTIONS: Record<PathName, string> = {
  direct: 'app opens the pty (serialport) → socat pty pair → echo',
  'direct-event-loop': 'app opens the pty (the agent\'s EventLoopSerialStream) → socat pty pair → echo',
  ser2net: 'app → TCP → ser2net (defaults: chardelay on, 64-byte buffers) → pty → echo',
  'ser2net-tuned': 'app → TCP → ser2net (chardelay off, 64 KiB buffers, TCP_NODELAY) → pty → echo',
  'node-relay': 'app → TCP → one Node process piping to the pty (no framing, no policy) → echo',
  devicemesh: 'app → TCP → sidecar → socket plane (mTLS) → agent → pty → echo',
  'devicemesh-one-hop': 'app → Unix socket → agent (one hop, no sidecar) → pty → echo',
  'devicemesh-plaintext': 'app → TCP → sidecar → socket plane (plaintext, --insecure) → agent → pty → echo',
  'devicemesh-pty': 'app opens the sidecar\'s pty (serialport) → sidecar → socket plane (mTLS) → agent → pty → echo',
};

/** The app's end of a path; an 'error' on `stream` is not thrown (the measurement sees the stream close). */
export interface AppConnection {
  stream: Duplex;
  close(): Promise<void>;
}

/** One path set up and ready: a fresh pty pair with its echo, and whatever stands between the app and it. */
export interface PathSetup {
  name: PathName;
  connect(): Promise<AppConnection>;
  /** Every process of the path but the benchmark's own, for the CPU figures. */
  processes(): Child[];
  /** The processes running the loop probe (profile mode): SIGUSR2 opens and closes their windows. */
  profiled?: () => Child[];
  close(): Promise<void>;
}

/** A number is a loopback TCP port, a string a Unix socket's path. */
function socketConnect(where: number | string): Promise<AppConnection> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(typeof where === 'number' ? { host: '127.0.0.1', port: where, noDelay: true } : { path: where }, () => {
      socket.off('error', reject);
      socket.on('error', () => undefined);
      resolve({
        stream: socket,
        close: () => new Promise<void>((done) => (socket.destroyed ? done() : socket.once('close', () => done()).destroy())),
      });
    });
    socket.once('error', reject);
  });
}

async function serialConnect(device: string): Promise<AppConnection> {
  const stream = await openSerialStream(autoDetect(), device, LINE);
  stream.on('error', () => undefined);
  return {
    stream,
    close: () => new Promise<void>((done) => (stream.isOpen ? stream.close(() => done()) : done())),
  };
}

async function eventLoopSerialConnect(device: string): Promise<AppConnection> {
  const binding: BindingInterface = autoDetect();
  const stream = new EventLoopSerialStream(device, await binding.open({ path: device, ...LINE, lock: true }));
  stream.on('error', () => undefined);
  return { stream, close: () => stream.close().catch(() => undefined) };
}

/** Sets up `name` in a directory of its own under `root`; a devicemesh path is profiled into `profileDir`/`name` when it is given. */
export async function setUpPath(name: PathName, root: string, profileDir?: string): Promise<PathSetup> {
  const dir = path.join(root, name);
  fs.mkdirSync(dir);
  // The device link matches the agent's --watch glob; the echo's end of the pair does not.
  const pty = await PtyEcho.create(dir, 'ttyBENCH0');
  try {
    switch (name) {
      case 'direct':
        return {
          name,
          connect: () => serialConnect(pty.device),
          processes: () => pty.processes(),
          close: () => pty.close(),
        };
      case 'direct-event-loop':
        return {
          name,
          connect: () => eventLoopSerialConnect(pty.device),
          processes: () => pty.processes(),
          close: () => pty.close(),
        };
      case 'ser2net':
      case 'ser2net-tuned': {
        const ser2net = await Ser2net.start(dir, pty.device, name === 'ser2net-tuned');
        return {
          name,
          connect: () => socketConnect(ser2net.port),
          processes: () => [ser2net.child, ...pty.processes()],
          close: async () => {
            await ser2net.stop();
            await pty.close();
          },
        };
      }
      case 'node-relay': {
        const port = await freePort();
        const relay = Child.fork('node-relay', path.join(__dirname, 'node-relay.js'), [pty.device, String(port)], path.join(dir, 'node-relay.log'));
        await waitFor('the Node relay to accept connections', () => accepts(port), 10_000, () => relay.exitError());
        return {
          name,
          connect: () => socketConnect(port),
          processes: () => [relay, ...pty.processes()],
          close: async () => {
            await relay.stop();
            await pty.close();
          },
        };
      }
      case 'devicemesh':
      case 'devicemesh-plaintext':
      case 'devicemesh-pty':
      case 'devicemesh-one-hop': {
        // The app's port is out of the agent's --watch glob, or the agent would take it for a device.
        const appPort = name === 'devicemesh-pty' ? path.join(dir, 'app', 'ttyDM0') : undefined;
        const oneHop = name === 'devicemesh-one-hop' ? path.join(dir, 'run', 'bench-app', 'device.sock') : undefined;
        const mesh = await DeviceMesh.start(dir, path.join(dir, 'tty*'), pty.device, {
          security: name === 'devicemesh-plaintext' ? 'plaintext' : 'mtls',
          ...(appPort ? { ptyPath: appPort } : {}),
          ...(oneHop ? { oneHopSocket: oneHop } : {}),
          ...(profileDir ? { profileDir: path.join(profileDir, name) } : {}),
        });
        return {
          name,
          connect: () => (appPort ? serialConnect(appPort) : socketConnect(oneHop ?? mesh.listenPort)),
          processes: () => [...mesh.processes(), ...pty.processes()],
          ...(profileDir ? { profiled: () => (mesh.sidecar ? [mesh.sidecar, mesh.agent] : [mesh.agent]) } : {}),
          close: async () => {
            await mesh.stop();
            await pty.close();
          },
        };
      }
    }
  } catch (err) {
    await pty.close();
    throw err;
  }
}
