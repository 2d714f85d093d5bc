/**
 * bench/media: a camera's frames per second and the latency the mesh adds to each frame, against
 * reading the same capture directly, in one run. A real control plane (mTLS, tokens from the CLI),
 * agent (`--capture-source lavfi`: ffmpeg's testsrc2 at the flags' size and rate, encoded to MJPEG
 * in live Matroska as for a camera) and sidecar run as children, with a broadcast read-only
 * binding of the camera. The agent's ffmpeg is tapped (ffmpeg-tap.ts): every frame is timed as it
 * leaves ffmpeg (direct) and as its last byte reaches an app reading the binding's endpoint (mesh);
 * the difference, frame by frame, is the added latency. Prints both frame rates, the added latency's
 * percentiles, frames the mesh lost and the agent's drop counter; writes bench/results/media-<timestamp>.json.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { errorMessage } from '../../src/errors';
import { cleanUpOnExit, connectLoopback, type MachineInfo, machineInfo, makeTempDir, runMain, writeResults } from '../common/bench-run';
import { sleep } from '../data-path/children';
import { type Percentiles, percentiles, round } from '../data-path/report';
import { SharedMesh } from '../sharing/shared-mesh';
import { FfmpegTap, ffmpegVersion, realFfmpeg } from './ffmpeg-tap';
import { type FrameArrival, FrameArrivals } from './frame-arrivals';
import { type MediaOptions, parseOptions, USAGE } from './options';

/** The mesh's readiness probe may have opened the camera: its capture has this long to end before the tap is armed (ms). */
const PROBE_SETTLE_MS = 1500;
/** How long the first frame may take: ffmpeg starts and reports its streams first (ms). */
const FIRST_FRAME_TIMEOUT_MS = 30_000;

interface ReadingFigures {
  frames: number;
  framesPerSecond: number;
  meanFrameBytes: number;
}

interface MediaReport {
  benchmark: 'media';
  startedAt: string;
  finishedAt: string;
  command: string;
  machine: MachineInfo;
  ffmpeg: string;
  options: { seconds: number; warmUpSeconds: number; width: number; height: number; fps: number };
  units: { latency: 'ms'; rate: 'frames/s' };
  /** The agent's ffmpeg read directly (the tap): the baseline. */
  direct: ReadingFigures;
  /** An app reading the binding's endpoint through agent, socket plane (mTLS) and sidecar. */
  mesh: ReadingFigures;
  /** Per frame: its arrival at the app minus its arrival off ffmpeg's stdout. */
  addedLatencyMs: Percentiles;
  /** Frames of the window read directly that never reached the app. */
  framesLost: number;
  /** The agent's media_frames_dropped for the binding at the end. */
  agentFramesDropped: number;
}

function progress(message: string): void {
  process.stderr.write(`[bench] ${message}\n`);
}

function figures(frames: readonly FrameArrival[], seconds: number): ReadingFigures {
  const bytes = frames.reduce((n, f) => n + f.bytes, 0);
  return { frames: frames.length, framesPerSecond: round(frames.length / seconds, 2), meanFrameBytes: frames.length ? Math.round(bytes / frames.length) : 0 };
}

/** The sum of media_frames_dropped over the agent's label sets. */
async function agentFramesDropped(agentAdmin: number): Promise<number> {
  const metrics = await (await fetch(`http://127.0.0.1:${agentAdmin}/stats/prometheus`)).text();
  return [...metrics.matchAll(/^devicemesh_media_frames_dropped_total\{[^}]*\} (\d+)$/gm)].reduce((n, m) => n + Number(m[1]), 0);
}

function formatReport(r: MediaReport): string {
  const m = r.machine;
  const o = r.options;
  const reading = (name: string, f: ReadingFigures): string =>
    `  ${name.padEnd(34)} ${String(f.framesPerSecond).padStart(7)} frames/s  (${f.frames} frames, mean ${f.meanFrameBytes} bytes)`;
  const l = r.addedLatencyMs;
  return [
    `devicemesh media benchmark — ${m.cpus} × ${m.cpuModel}, Node ${m.node}, ffmpeg ${r.ffmpeg}, load ${m.loadAverage.join(' ')}`,
    `camera: lavfi testsrc2 ${o.width}x${o.height} at ${o.fps} fps, MJPEG in live Matroska; ${o.seconds} s measured after ${o.warmUpSeconds} s warm-up`,
    '',
    reading('direct (ffmpeg stdout, tapped)', r.direct),
    reading('through the mesh (app socket)', r.mesh),
    '',
    `  added latency per frame (ms)       p50 ${l.p50}  p90 ${l.p90}  p99 ${l.p99}  max ${l.max}  mean ${l.mean}  (${l.samples} frames)`,
    `  frames lost on the way             ${r.framesLost}   (agent's media_frames_dropped: ${r.agentFramesDropped})`,
  ].join('\n');
}

async function measure(options: MediaOptions, dir: string, ffmpeg: string, startedAt: Date, argv: string[]): Promise<MediaReport> {
  const device = path.join(dir, 'video0');
  fs.writeFileSync(device, '');
  const tap = FfmpegTap.create(dir, ffmpeg);
  const mesh = await SharedMesh.start(
    dir,
    `video:${path.join(dir, 'video*')}`,
    device,
    { protocol: 'raw', policy: 'sharing: broadcast, access: read-only', settings: `width: "${options.width}", height: "${options.height}", fps: "${options.fps}"` },
    { args: ['--capture-source', 'lavfi'], env: { PATH: `${tap.binDir}${path.delimiter}${process.env.PATH ?? ''}` } },
  );
  try {
    await sleep(PROBE_SETTLE_MS);
    const fifo = tap.arm();
    const direct = new FrameArrivals(fifo);
    const app = await connectLoopback(mesh.listenPort);
    const viaMesh = new FrameArrivals(app);
    try {
      const first = await viaMesh.first(FIRST_FRAME_TIMEOUT_MS, 'the mesh');
      await direct.first(1000, 'the tap (was another capture tapped?)');
      progress('first frame through the mesh; warming up');
      const from = first.ms + options.warmUpSeconds * 1000;
      const to = from + options.seconds * 1000;
      await sleep(to - first.ms + 1000);
      const directFrames = direct.within(from, to);
      const meshFrames = viaMesh.within(from, to);
      const reached = new Set(viaMesh.frames.map((f) => f.key));
      const leftFfmpeg = new Map(direct.frames.map((f) => [f.key, f.ms]));
      const added: number[] = [];
      for (const frame of meshFrames) {
        const left = leftFfmpeg.get(frame.key);
        if (left !== undefined) added.push(frame.ms - left);
      }
      if (added.length === 0) throw new Error('no frame through the mesh matched a frame of the tap');
      return {
        benchmark: 'media',
        startedAt: startedAt.toISOString(),
        finishedAt: new Date().toISOString(),
        command: ['node', path.relative(process.cwd(), process.argv[1] ?? 'dist/bench/media/main.js'), ...argv].join(' '),
        machine: machineInfo(),
        ffmpeg: ffmpegVersion(ffmpeg),
        options: { seconds: options.seconds, warmUpSeconds: options.warmUpSeconds, width: options.width, height: options.height, fps: options.fps },
        units: { latency: 'ms', rate: 'frames/s' },
        direct: figures(directFrames, options.seconds),
        mesh: figures(meshFrames, options.seconds),
        addedLatencyMs: percentiles(added.map((ms) => round(ms, 3))),
        framesLost: directFrames.filter((f) => !reached.has(f.key)).length,
        agentFramesDropped: await agentFramesDropped(mesh.agentAdmin),
      };
    } finally {
      app.destroy();
      fifo.destroy();
    }
  } finally {
    await mesh.stop();
  }
}

export async function main(argv: string[]): Promise<number> {
  let options;
  try {
    options = parseOptions(argv);
  } catch (err) {
    process.stderr.write(`bench:media: ${errorMessage(err)}\n`);
    return 2;
  }
  if (!options) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const ffmpeg = realFfmpeg();
  if (!ffmpeg) {
    process.stderr.write('bench:media: skipped: ffmpeg is not installed (scripts/install-test-deps.sh installs it)\n');
    return 0;
  }
  cleanUpOnExit();
  const startedAt = new Date();
  const dir = makeTempDir('devicemesh-bench-media-');
  const report = await measure(options, dir, ffmpeg, startedAt, argv);
  writeResults(options.out, report, formatReport(report));
  return 0;
}

if (require.main === module) runMain('bench:media', main);
