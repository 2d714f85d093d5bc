import * as fs from 'node:fs';
import * as path from 'node:path';
import { type ProbeResult, WINDOW_CLOSE, WINDOW_OPEN } from './loop-probe';
import { round } from './report';

/**
 * `bench:data-path --profile DIR`: the sidecar and the agent of each devicemesh path run with
 * `--cpu-prof`, `--trace-gc` and the loop probe preloaded; the bench opens the probe's window
 * (SIGUSR2) around every timed round-trip round on fresh ports and closes it after, and once the
 * processes have exited it reads back, for the windows only: the CPU profile's self time by
 * function and by area (a file of this repo, a package, a part of Node), the GC pauses and the
 * bytes allocated per round trip (heap growth plus what --trace-gc says each collection freed),
 * and the event-loop delay and utilisation.
 */

export interface SelfTime {
  name: string;
  ms: number;
  /** Of the window's sampled time that was not idle. */
  percent: number;
}

export interface ProcessProfile {
  process: string;
  roundTrips: number;
  windowSeconds: number;
  cpu: { sampledMs: number; idleMs: number; topFunctions: SelfTime[]; topAreas: SelfTime[] };
  gc: { traceGc: Record<string, { count: number; ms: number }>; per5000RoundTrips: Record<string, number>; observed: ProbeResult['gc'] };
  allocatedBytesPerRoundTrip: number;
  eventLoopDelayMs: ProbeResult['eventLoopDelayMs'];
  eventLoopUtilization: number;
}

interface CpuProfile {
  nodes: Array<{ id: number; callFrame: { functionName: string; url: string; lineNumber: number } }>;
  startTime: number;
  samples: number[];
  timeDeltas: number[];
}

/** Where a function's code lives, coarsely: a repo file, a package, a part of Node, or V8's own buckets. */
export function areaOf(url: string, functionName: string): string {
  if (!url) return functionName.startsWith('(') ? functionName : '(native)';
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (pkg) return `package ${pkg[1]}`;
  const internal = /^node:(?:internal\/)?([^/]+(?:\/[^/]+)?)/.exec(url);
  if (internal) return `node ${internal[1]}`;
  const repo = /\/dist\/(.+)\.js$/.exec(url);
  return repo ? (repo[1] as string) : url;
}

function top(map: Map<string, number>, busyMs: number, n: number): SelfTime[] {
  return [...map]
    .sort((a, b) => b[1] - a[1])
    .slice(0, n)
    .map(([name, us]) => ({ name, ms: round(us / 1000), percent: round((100 * us) / 1000 / busyMs) }));
}

/** Self time of the samples that fall in the windows (µs of CLOCK_MONOTONIC, the profile's clock). */
export function cpuInWindows(profile: CpuProfile, windows: ReadonlyArray<{ startUs: number; endUs: number }>): ProcessProfile['cpu'] {
  const byId = new Map(profile.nodes.map((n) => [n.id, n.callFrame]));
  const functions = new Map<string, number>();
  const areas = new Map<string, number>();
  let t = profile.startTime;
  let sampled = 0;
  let idle = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    t += profile.timeDeltas[i] ?? 0;
    const us = profile.timeDeltas[i + 1] ?? 0;
    if (!windows.some((w) => t >= w.startUs && t < w.endUs)) continue;
    const frame = byId.get(profile.samples[i] as number);
    if (!frame) continue;
    sampled += us;
    if (frame.functionName === '(idle)') {
      idle += us;
      continue;
    }
    const file = frame.url ? `${areaOf(frame.url, frame.functionName)}:${frame.lineNumber + 1}` : '';
    const fn = `${frame.functionName || '(anonymous)'}${file ? ` ${file}` : ''}`;
    functions.set(fn, (functions.get(fn) ?? 0) + us);
    const area = areaOf(frame.url, frame.functionName);
    areas.set(area, (areas.get(area) ?? 0) + us);
  }
  const busyMs = Math.max((sampled - idle) / 1000, 1e-9);
  return { sampledMs: round(sampled / 1000), idleMs: round(idle / 1000), topFunctions: top(functions, busyMs, 15), topAreas: top(areas, busyMs, 12) };
}

/** One collection as --trace-gc prints it: "Scavenge 10.2 (12.3) -> 9.1 (12.3) MB, 1.20 / 0.00 ms". */
const TRACE_GC = /: (Scavenge|Minor Mark-Compact|Mark-Compact|Mark-sweep)\b[^\d]*([\d.]+) \([\d.]+\) -> ([\d.]+) \([\d.]+\) MB, ([\d.]+) \//;

/** The collections --trace-gc logged between each window's markers: count and pause per kind, and the MB they freed. */
export function traceGcInWindows(log: string): { kinds: Record<string, { count: number; ms: number }>; freedMB: number } {
  const kinds: Record<string, { count: number; ms: number }> = {};
  let freedMB = 0;
  let inside = false;
  for (const line of log.split('\n')) {
    if (line.includes(WINDOW_OPEN)) inside = true;
    else if (line.includes(WINDOW_CLOSE)) inside = false;
    else if (inside) {
      const m = TRACE_GC.exec(line);
      if (!m) continue;
      const k = (kinds[m[1] as string] ??= { count: 0, ms: 0 });
      k.count += 1;
      k.ms = round(k.ms + Number(m[4]), 2);
      freedMB += Number(m[2]) - Number(m[3]);
    }
  }
  return { kinds, freedMB };
}

/** Reads back what `name` left in `dir` and its log, once it has exited. */
export function readProcessProfile(dir: string, name: string, logFile: string, roundTrips: number): ProcessProfile {
  const probe = JSON.parse(fs.readFileSync(path.join(dir, `${name}.probe.json`), 'utf8')) as ProbeResult;
  const cpu = cpuInWindows(JSON.parse(fs.readFileSync(path.join(dir, `${name}.cpuprofile`), 'utf8')) as CpuProfile, probe.windows);
  const gc = traceGcInWindows(fs.readFileSync(logFile, 'utf8'));
  const heapGrowth = probe.windows.reduce((sum, w) => sum + w.heapUsedEnd - w.heapUsedStart, 0);
  const allocated = heapGrowth + gc.freedMB * 1024 * 1024;
  const per5000 = Object.fromEntries(Object.entries(gc.kinds).map(([kind, k]) => [kind, round((k.count * 5000) / roundTrips, 2)]));
  return {
    process: name,
    roundTrips,
    windowSeconds: round(probe.windows.reduce((s, w) => s + w.endUs - w.startUs, 0) / 1e6, 3),
    cpu,
    gc: { traceGc: gc.kinds, per5000RoundTrips: per5000, observed: probe.gc },
    allocatedBytesPerRoundTrip: Math.round(allocated / roundTrips),
    eventLoopDelayMs: probe.eventLoopDelayMs,
    eventLoopUtilization: round(probe.eventLoopUtilization, 3),
  };
}

export function formatProfile(path_: string, p: ProcessProfile): string {
  const gc = Object.entries(p.gc.traceGc).map(([kind, k]) => `${kind} ${k.count} (${k.ms.toFixed(1)} ms)`).join(', ') || 'none';
  const per = Object.entries(p.gc.per5000RoundTrips).map(([kind, n]) => `${kind} ${n}`).join(', ') || '0';
  const d = p.eventLoopDelayMs;
  return [
    `${path_} ${p.process}: ${p.roundTrips} round trips in ${p.windowSeconds} s of windows`,
    `  CPU sampled ${p.cpu.sampledMs} ms, idle ${p.cpu.idleMs} ms; event-loop utilisation ${p.eventLoopUtilization}`,
    `  event-loop delay (each sample the interval of a 1 ms timer) p50 ${d.p50} ms, p99 ${d.p99} ms, max ${d.max} ms over ${d.samples} samples`,
    `  GC (--trace-gc): ${gc}; per 5,000 round trips: ${per}`,
    `  allocated per round trip ≈ ${p.allocatedBytesPerRoundTrip} bytes (heap growth + freed by GC)`,
    '  self time by area (% of busy):',
    ...p.cpu.topAreas.map((a) => `    ${a.percent.toFixed(1).padStart(5)} %  ${a.ms.toFixed(1).padStart(8)} ms  ${a.name}`),
    '  self time by function (% of busy):',
    ...p.cpu.topFunctions.map((f) => `    ${f.percent.toFixed(1).padStart(5)} %  ${f.ms.toFixed(1).padStart(8)} ms  ${f.name}`),
  ].join('\n');
}
