/**
 * Loaded into a measured process with `node --require` (through NODE_OPTIONS): says, as JSON in
 * $DEVICEMESH_PROBE_DIR/<pid>.json, where its memory goes (process.memoryUsage(), V8's heap
 * statistics), how many modules it has loaded and which .proto files it has read. Written on
 * SIGUSR2, which no devicemesh process uses, and with DEVICEMESH_PROBE_AT_EXIT=1 also at exit
 * (for short CLI commands). Measures; changes nothing the process does.
 */
import fs = require('node:fs');
import * as path from 'node:path';
import * as v8 from 'node:v8';

/** What the probe writes. */
export interface ProbeSnapshot {
  pid: number;
  argv: string[];
  memoryMB: { rss: number; heapTotal: number; heapUsed: number; external: number; arrayBuffers: number };
  heap: { totalMB: number; usedMB: number; mallocedMB: number; nativeContexts: number };
  /** V8's heap spaces (new_space, old_space, code_space, …): size and used, MB. */
  spaces: Record<string, { sizeMB: number; usedMB: number }>;
  modules: number;
  protoFiles: string[];
}

const MB = 1024 * 1024;
const mb = (bytes: number): number => Math.round((bytes / MB) * 10) / 10;

function snapshot(protoFiles: ReadonlySet<string>): ProbeSnapshot {
  const m = process.memoryUsage();
  const h = v8.getHeapStatistics();
  return {
    pid: process.pid,
    argv: process.argv.slice(2),
    memoryMB: { rss: mb(m.rss), heapTotal: mb(m.heapTotal), heapUsed: mb(m.heapUsed), external: mb(m.external), arrayBuffers: mb(m.arrayBuffers) },
    heap: { totalMB: mb(h.total_heap_size), usedMB: mb(h.used_heap_size), mallocedMB: mb(h.malloced_memory), nativeContexts: h.number_of_native_contexts },
    spaces: Object.fromEntries(v8.getHeapSpaceStatistics().map((sp) => [sp.space_name, { sizeMB: mb(sp.space_size), usedMB: mb(sp.space_used_size) }])),
    modules: Object.keys(require.cache).length,
    protoFiles: [...protoFiles],
  };
}

function install(dir: string): void {
  const protoFiles = new Set<string>();
  // Every loader (proto-loader, protobufjs, the reflection index) reads .proto files with fs.readFileSync.
  const readFileSync = fs.readFileSync;
  const counting = function (this: unknown, ...args: Parameters<typeof fs.readFileSync>): ReturnType<typeof fs.readFileSync> {
    const file = args[0];
    if (typeof file === 'string' && file.endsWith('.proto')) protoFiles.add(file);
    return readFileSync.apply(this, args);
  };
  // The module object itself (not a namespace copy), so that loaders required later see the wrapper.
  (fs as { readFileSync: typeof fs.readFileSync }).readFileSync = counting as typeof fs.readFileSync;
  const write = (): void => fs.writeFileSync(path.join(dir, `${process.pid}.json`), JSON.stringify(snapshot(protoFiles)));
  process.on('SIGUSR2', write);
  if (process.env.DEVICEMESH_PROBE_AT_EXIT === '1') process.on('exit', write);
}

const probeDir = process.env.DEVICEMESH_PROBE_DIR;
if (probeDir) install(probeDir);
