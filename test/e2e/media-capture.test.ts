import { strict as assert } from 'node:assert';
import { execFile, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import type { ListMappingsResponse } from '../../src/proto/types';
import { MatroskaFramer } from '../../src/media/matroska-framer';
import { cli, freePort, httpGet, MeshProcess, waitFor } from '../helpers/processes';

const run = promisify(execFile);
const haveFfmpeg = spawnSync('ffprobe', ['-version']).status === 0 && spawnSync('ffmpeg', ['-version']).status === 0;

interface ProbedStream {
  codec_name: string;
  width?: number;
  height?: number;
  r_frame_rate?: string;
  sample_rate?: string;
  channels?: number;
}

async function probe(port: number): Promise<ProbedStream | undefined> {
  const r = await run('ffprobe', ['-v', 'error', '-show_streams', '-of', 'json', `tcp://127.0.0.1:${port}`], { timeout: 30_000 });
  return (JSON.parse(r.stdout) as { streams: ProbedStream[] }).streams[0];
}

/** `binding`'s media_frames_dropped{reason="slow_consumer"} on the agent's /stats/prometheus (0 before its first drop). */
async function framesDropped(agentAdmin: number, binding: string): Promise<number> {
  const metrics = (await httpGet(`http://127.0.0.1:${agentAdmin}/stats/prometheus`)).body;
  const line = new RegExp(`^devicemesh_media_frames_dropped_total\\{[^}]*binding="${binding}"[^}]*reason="slow_consumer"[^}]*\\} (\\d+)$`, 'm').exec(metrics);
  return line ? Number(line[1]) : 0;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/**
 * A camera and a microphone through the whole mesh (control plane, agent, sidecar as processes),
 * captured by real ffmpeg children fed by lavfi's testsrc2 and sine (no capture hardware here):
 * two ffprobe consumers of the camera at once, a consumer that stops reading losing whole frames
 * (counted by the agent) while another keeps the frame rate, and the microphone's rate and
 * channels as ffprobe reads them. The camera is 1280x720 so that the stalled consumer's path
 * (mostly the kernel's loopback socket buffers, see docs/devices.md) is full within seconds.
 */
describe('e2e: video and audio capture through the mesh', function () {
  this.timeout(120_000);
  let tmp: string;
  let cp: string;
  let camPort: number;
  let micPort: number;
  let agentAdmin: number;
  const procs: MeshProcess[] = [];

  before(async function () {
    if (!haveFfmpeg) {
      console.log('    skipped: ffmpeg/ffprobe are not installed (scripts/install-test-deps.sh installs them)');
      this.skip();
    }
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'dm-media-e2e-'));
    const cpPort = await freePort();
    agentAdmin = await freePort();
    camPort = await freePort();
    micPort = await freePort();
    cp = `127.0.0.1:${cpPort}`;
    fs.writeFileSync(path.join(tmp, 'video0'), '');
    fs.mkdirSync(path.join(tmp, 'snd'));
    fs.writeFileSync(path.join(tmp, 'snd', 'pcmC0D0c'), '');
    procs.push(MeshProcess.start('e2e-media-cp', ['control-plane', '--listen', cp, '--admin', `127.0.0.1:${await freePort()}`, '--data-dir', path.join(tmp, 'data')]));
    procs.push(MeshProcess.start('e2e-media-agent', [
      'agent', '--host-id', 'gw1', '--control-plane', cp, '--listen', `127.0.0.1:${await freePort()}`,
      '--watch', `video:${path.join(tmp, 'video*')}`, '--watch', `audio:${path.join(tmp, 'snd', 'pcmC*')}`,
      '--capture-source', 'lavfi', '--admin', `127.0.0.1:${agentAdmin}`,
    ]));
    procs.push(MeshProcess.start('e2e-media-sidecar', ['sidecar', '--workload-id', 'app1', '--control-plane', cp, '--admin', `127.0.0.1:${await freePort()}`]));
    const file = path.join(tmp, 'bindings.yaml');
    fs.writeFileSync(file, `kind: Binding
name: cam
workload: app1
device: { host: gw1, path: ${path.join(tmp, 'video0')} }
virtual: { name: cam0, protocol: raw, listen: 127.0.0.1:${camPort} }
policy: { sharing: broadcast, access: read-only }
settings: { width: "1280", height: "720", fps: "30" }
---
kind: Binding
name: mic
workload: app1
device: { host: gw1, path: ${path.join(tmp, 'snd', 'pcmC0D0c')} }
virtual: { name: mic0, protocol: raw, listen: 127.0.0.1:${micPort} }
policy: { sharing: broadcast, access: read-only }
settings: { rate: "22050", channels: "1", sampleFormat: S16_LE }
`);
    // Generous: on a loaded machine the control plane alone can take tens of seconds to start.
    await waitFor('the apply', () => cli(['apply', '-f', file, '--control-plane', cp]).code === 0, 90_000);
    await waitFor('the mappings', () => {
      const r = cli(['get', 'mappings', '-o', 'json', '--control-plane', cp]);
      if (r.code !== 0) return false;
      const bindings = (JSON.parse(r.stdout) as ListMappingsResponse).mappings.map((m) => m.binding);
      return bindings.includes('cam') && bindings.includes('mic');
    }, 30_000);
    for (const port of [camPort, micPort]) {
      await waitFor('the virtual devices to listen', () => new Promise<boolean>((resolve) => {
        const s = net.connect(port, '127.0.0.1', () => { s.destroy(); resolve(true); }).on('error', () => resolve(false));
      }), 20_000);
    }
  });

  after(async () => {
    await Promise.all(procs.map((p) => p.stop()));
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('two ffprobe consumers at once each see MJPEG 1280x720 at 30 fps', async () => {
    for (const s of await Promise.all([probe(camPort), probe(camPort)])) {
      assert.equal(s?.codec_name, 'mjpeg');
      assert.equal(s?.width, 1280);
      assert.equal(s?.height, 720);
      assert.equal(s?.r_frame_rate, '30/1');
    }
  });

  it('a consumer that stops reading loses whole frames, counted by the agent, while another keeps the frame rate', async () => {
    const droppedBefore = await framesDropped(agentAdmin, 'cam');
    const stalled = net.connect(camPort, '127.0.0.1');
    stalled.pause();
    const reader = net.connect(camPort, '127.0.0.1');
    let frames = 0;
    const framer = new MatroskaFramer(() => frames++);
    reader.on('data', (c: Buffer) => framer.push(c));
    try {
      await sleep(1000);
      const started = Date.now();
      const framesAtStart = frames;
      const dropped = await waitFor('frames dropped for the stalled consumer', async () => {
        const n = (await framesDropped(agentAdmin, 'cam')) - droppedBefore;
        return n > 0 ? n : undefined;
      }, 30_000);
      const firstDrop = Date.now();
      // Measured past the first drop too: the reader's rate while the other's path is full.
      await sleep(2000);
      const seconds = (Date.now() - started) / 1000;
      const rate = (frames - framesAtStart) / seconds;
      console.log(`      reader: ${rate.toFixed(1)} frames/s over ${seconds.toFixed(1)} s while the other stalled; first drops seen ${((firstDrop - started) / 1000).toFixed(1)} s in (${dropped})`);
      assert.ok(dropped > 0);
      assert.ok(rate >= 20, `the reading consumer got ${rate.toFixed(1)} frames/s of 30`);
    } finally {
      stalled.destroy();
      reader.destroy();
    }
  });

  it('ffprobe on the microphone sees PCM at the configured rate and channels', async () => {
    const s = await probe(micPort);
    assert.equal(s?.codec_name, 'pcm_s16le');
    assert.equal(s?.sample_rate, '22050');
    assert.equal(s?.channels, 1);
  });
});
