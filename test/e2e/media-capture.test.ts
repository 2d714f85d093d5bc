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

/**
 * A camera through the whole mesh (control plane, agent, sidecar as processes), captured by a real
 * ffmpeg fed by lavfi's testsrc2 (no camera here): two ffprobe consumers at once, and a consumer
 * that stops reading while another keeps the frame rate (the whole-frame drop itself is tested in
 * test/unit/agent/frame-fanout.test.ts: in 8 s the loopback and sidecar buffers absorb the stall).
 */
describe('e2e: video capture through the mesh', function () {
  this.timeout(120_000);
  let tmp: string;
  let cp: string;
  let port: number;
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
    port = await freePort();
    cp = `127.0.0.1:${cpPort}`;
    fs.writeFileSync(path.join(tmp, 'video0'), '');
    procs.push(MeshProcess.start('e2e-media-cp', ['control-plane', '--listen', cp, '--admin', `127.0.0.1:${await freePort()}`, '--data-dir', path.join(tmp, 'data')]));
    procs.push(MeshProcess.start('e2e-media-agent', ['agent', '--host-id', 'gw1', '--control-plane', cp, '--listen', `127.0.0.1:${await freePort()}`, '--watch', `video:${path.join(tmp, 'video*')}`, '--capture-source', 'lavfi', '--admin', `127.0.0.1:${agentAdmin}`]));
    procs.push(MeshProcess.start('e2e-media-sidecar', ['sidecar', '--workload-id', 'app1', '--control-plane', cp, '--admin', `127.0.0.1:${await freePort()}`]));
    const file = path.join(tmp, 'binding.yaml');
    fs.writeFileSync(file, `kind: Binding
name: cam
workload: app1
device: { host: gw1, path: ${path.join(tmp, 'video0')} }
virtual: { name: cam0, protocol: raw, listen: 127.0.0.1:${port} }
policy: { sharing: broadcast, access: read-only }
settings: { width: "640", height: "480", fps: "30" }
`);
    await waitFor('the apply', () => cli(['apply', '-f', file, '--control-plane', cp]).code === 0, 30_000);
    await waitFor('the mapping', () => {
      const r = cli(['get', 'mappings', '-o', 'json', '--control-plane', cp]);
      return r.code === 0 && (JSON.parse(r.stdout) as ListMappingsResponse).mappings.some((m) => m.binding === 'cam');
    }, 30_000);
    await waitFor('the virtual camera to listen', () => new Promise<boolean>((resolve) => {
      const s = net.connect(port, '127.0.0.1', () => { s.destroy(); resolve(true); }).on('error', () => resolve(false));
    }), 20_000);
  });

  after(async () => {
    await Promise.all(procs.map((p) => p.stop()));
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('two ffprobe consumers at once each see MJPEG 640x480 at 30 fps', async () => {
    const probe = (): Promise<{ stdout: string }> => run('ffprobe', ['-v', 'error', '-show_streams', '-of', 'json', `tcp://127.0.0.1:${port}`], { timeout: 30_000 });
    const results = await Promise.all([probe(), probe()]);
    for (const r of results) {
      const s = (JSON.parse(r.stdout) as { streams: Array<{ codec_name: string; width: number; height: number; r_frame_rate: string }> }).streams[0];
      assert.equal(s?.codec_name, 'mjpeg');
      assert.equal(s?.width, 640);
      assert.equal(s?.height, 480);
      assert.equal(s?.r_frame_rate, "30/1");
    }
  });

  it('a consumer that stops reading does not slow another down (frames dropped for it, once the buffers on its path are full, are printed)', async () => {
    const stalled = net.connect(port, '127.0.0.1');
    stalled.pause();
    const reader = net.connect(port, '127.0.0.1');
    let frames = 0;
    const framer = new MatroskaFramer(() => frames++);
    reader.on('data', (c: Buffer) => framer.push(c));
    await new Promise((r) => setTimeout(r, 2000));
    const before = frames;
    await new Promise((r) => setTimeout(r, 6000));
    const rate = (frames - before) / 6;
    const metrics = (await httpGet(`http://127.0.0.1:${agentAdmin}/stats/prometheus`)).body;
    const dropped = [...metrics.matchAll(/^media_frames_dropped\{[^}]*\} (\d+)/gm)].reduce((n, m) => n + Number(m[1]), 0);
    console.log(`      reader: ${rate.toFixed(1)} frames/s while the other stalled; dropped for the stalled one: ${dropped}`);
    stalled.destroy();
    reader.destroy();
    assert.ok(rate >= 20, `the reading consumer got ${rate.toFixed(1)} frames/s of 30`);
  });
});
