/**
 * Preloaded (`node --require …/loop-probe.js`) into the sidecar and agent by `bench:data-path
 * --profile DIR`: each SIGUSR2 opens or closes a measuring window, and at exit the totals over
 * all windows go to DIR/<name>.probe.json (the name from DEVICEMESH_BENCH_PROBE_NAME):
 * event-loop delay (as perf_hooks.monitorEventLoopDelay measures it, at 1 ms resolution, inside
 * windows only; each sample is the whole interval between a 1 ms timer's runs, so an idle loop reads ~1 ms), event-loop utilisation, GC pauses by kind (a PerformanceObserver), heap in use at
 * each edge (for the allocation, with the freed bytes of --trace-gc) and each window's
 * CLOCK_MONOTONIC edges in µs (the clock of --cpu-prof's sample timestamps). The markers
 * written to stdout let the bench find the --trace-gc lines of each window in the log.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { constants, createHistogram, type EventLoopUtilization, performance, type PerformanceEntry, PerformanceObserver } from 'node:perf_hooks';

export const WINDOW_OPEN = '[loop-probe] window open';
export const WINDOW_CLOSE = '[loop-probe] window close';

/** What the probe writes: totals over every window. */
export interface ProbeResult {
  pid: number;
  windows: Array<{ startUs: number; endUs: number; heapUsedStart: number; heapUsedEnd: number }>;
  eventLoopDelayMs: { samples: number; p50: number; p99: number; max: number; mean: number };
  eventLoopUtilization: number;
  gc: Record<string, { count: number; ms: number }>;
}

/** node:perf_hooks' GC kinds (NODE_PERFORMANCE_GC_*). */
const GC_KINDS: Readonly<Record<number, string>> = {
  [constants.NODE_PERFORMANCE_GC_MINOR]: 'minor (scavenge)',
  [constants.NODE_PERFORMANCE_GC_MAJOR]: 'major',
  [constants.NODE_PERFORMANCE_GC_INCREMENTAL]: 'incremental',
  [constants.NODE_PERFORMANCE_GC_WEAKCB]: 'weak callbacks',
};

function startProbe(dir: string, name: string): void {
  // monitorEventLoopDelay's own method (a 1 ms timer, each interval between its runs recorded), run
  // by hand: a monitor disabled and enabled again would time its first sample from before the pause.
  const delay = createHistogram();
  let sampler: NodeJS.Timeout | undefined;
  let lastTick = 0n;
  const windows: ProbeResult['windows'] = [];
  const gc: ProbeResult['gc'] = {};
  let open: { startUs: number; heapUsedStart: number; elu: EventLoopUtilization } | undefined;
  let busy = 0;
  let total = 0;
  const nowUs = (): number => Number(process.hrtime.bigint() / 1000n);

  const observer = new PerformanceObserver((list) => {
    if (!open) return;
    for (const entry of list.getEntries()) {
      const kind = GC_KINDS[(entry as PerformanceEntry & { detail?: { kind?: number } }).detail?.kind ?? 0] ?? 'other';
      const k = (gc[kind] ??= { count: 0, ms: 0 });
      k.count += 1;
      k.ms += entry.duration;
    }
  });
  observer.observe({ entryTypes: ['gc'] });

  process.on('SIGUSR2', () => {
    if (!open) {
      open = { startUs: nowUs(), heapUsedStart: process.memoryUsage().heapUsed, elu: performance.eventLoopUtilization() };
      lastTick = process.hrtime.bigint();
      sampler = setInterval(() => {
        const now = process.hrtime.bigint();
        delay.record(Math.max(1, Number(now - lastTick)));
        lastTick = now;
      }, 1);
      sampler.unref();
      fs.writeSync(1, `${WINDOW_OPEN}\n`);
      return;
    }
    clearInterval(sampler);
    const elu = performance.eventLoopUtilization(open.elu);
    busy += elu.active;
    total += elu.active + elu.idle;
    windows.push({ startUs: open.startUs, endUs: nowUs(), heapUsedStart: open.heapUsedStart, heapUsedEnd: process.memoryUsage().heapUsed });
    open = undefined;
    fs.writeSync(1, `${WINDOW_CLOSE}\n`);
  });

  process.on('exit', () => {
    const ms = (ns: number): number => Math.round(ns / 1e3) / 1e3;
    const result: ProbeResult = {
      pid: process.pid,
      windows,
      eventLoopDelayMs: {
        samples: delay.count,
        p50: ms(delay.count ? delay.percentile(50) : 0),
        p99: ms(delay.count ? delay.percentile(99) : 0),
        max: ms(delay.count ? delay.max : 0),
        mean: ms(delay.count ? delay.mean : 0),
      },
      eventLoopUtilization: total > 0 ? busy / total : 0,
      gc,
    };
    fs.writeFileSync(path.join(dir, `${name}.probe.json`), `${JSON.stringify(result, null, 2)}\n`);
  });
}

const dir = process.env.DEVICEMESH_BENCH_PROFILE_DIR;
const name = process.env.DEVICEMESH_BENCH_PROBE_NAME;
if (dir && name) startProbe(dir, name);
