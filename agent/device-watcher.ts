import { EventEmitter } from 'node:events';
import { type FSWatcher, watch } from 'node:fs';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { errorMessage } from '../src/errors';
import type { Logger } from '../src/log';
import type { DeviceKind } from '../src/proto/types';
import { kindWord, parseWatchSpec, type WatchSpec } from './device-kinds';
import type { DiscoveredDevice } from './drivers/device-driver';

/** A device the watcher reports: always with an identity (its path when nothing better is known). */
export interface WatchedDevice extends DiscoveredDevice {
  deviceId: string;
}

export interface DeviceWatcherOptions {
  /** `--watch` specs, `[kind:]GLOB` (see parseWatchSpec); a path two specs match goes to the first. */
  watches: readonly string[];
  /**
   * The driver listing of a kind (DeviceDriver.list()), asked once per scan for each kind with new
   * paths, for their identity, capabilities and labels. Allowed to fail: devices then go by path.
   */
  list?: (kind: DeviceKind) => Promise<DiscoveredDevice[]>;
  log: Logger;
  /** How long after a directory event the scan runs, so that a burst of events makes one scan (default 50). */
  debounceMs?: number;
  /** The safety rescan, for what inotify missed (queue overflow, a watch that could not be set) (default 2000). */
  rescanMs?: number;
}

/** One inotify watch: a watched directory, or the nearest existing ancestor of ones not there yet. */
interface DirWatch {
  handle: FSWatcher;
  ino: number;
  /** Events of a watched directory all count; of an ancestor, only those of these children. */
  watched: boolean;
  children: Set<string>;
  /** An event named like the directory itself: it may have been removed, and the watch with it. */
  suspect: boolean;
}

/**
 * Finds devices through inotify (fs.watch) on the directories of the `--watch` globs: a create or
 * remove there schedules a debounced scan (readdir + stat). Anything that exists and is not a
 * directory counts, symlinks included (a socat `link=` or a /dev/serial/by-id name), but not a
 * dangling one; the device's path is the watched path itself. A device that moves to another path
 * is removed at the old one and added at the new one within one scan, removals first.
 *
 * Events: `added` (WatchedDevice), `removed` (WatchedDevice).
 */
export class DeviceWatcher extends EventEmitter<{ added: [WatchedDevice]; removed: [WatchedDevice] }> {
  private readonly specs: WatchSpec[];
  private readonly dirs: string[];
  private readonly debounceMs: number;
  private readonly rescanMs: number;
  /** path → device, and what file it is (see fileOf): another file at the same path is another device. */
  private readonly present = new Map<string, { device: WatchedDevice; file: string }>();
  private readonly watches = new Map<string, DirWatch>();
  private readonly reported = new Set<string>();
  private debounce: NodeJS.Timeout | undefined;
  private rescan: NodeJS.Timeout | undefined;
  private scanning: Promise<void> | undefined;
  private again = false;
  private stopped = true;

  constructor(private readonly options: DeviceWatcherOptions) {
    super();
    this.specs = options.watches.map(parseWatchSpec);
    this.dirs = [...new Set(this.specs.map((s) => s.glob.dir))];
    this.debounceMs = options.debounceMs ?? 50;
    this.rescanMs = options.rescanMs ?? 2000;
  }

  /** Watches and scans once, so that devices present at start are known when this resolves. */
  async start(): Promise<void> {
    this.stopped = false;
    this.requestScan();
    await this.scanning;
  }

  /** Closes every watch and timer; a scan under way finishes without reporting. */
  stop(): void {
    this.stopped = true;
    clearTimeout(this.debounce);
    clearTimeout(this.rescan);
    for (const w of this.watches.values()) w.handle.close();
    this.watches.clear();
  }

  /** path → device, of what is present now. */
  devices(): Map<string, WatchedDevice> {
    return new Map([...this.present].map(([p, { device }]) => [p, device]));
  }

  private onEvent(): void {
    if (this.stopped || this.debounce) return;
    // Armed by the first event and not pushed back by later ones: a steady stream still gets scanned.
    this.debounce = setTimeout(() => {
      this.debounce = undefined;
      this.requestScan();
    }, this.debounceMs);
  }

  private requestScan(): void {
    if (this.stopped) return;
    if (this.scanning) {
      this.again = true;
      return;
    }
    this.scanning = this.runScans();
  }

  /** Scans until nothing asked for another meanwhile; scans never overlap. */
  private async runScans(): Promise<void> {
    clearTimeout(this.rescan);
    do {
      this.again = false;
      try {
        await this.scan();
      } catch (err) {
        this.warnOnce('scan', 'device scan failed', err);
      }
    } while (this.again && !this.stopped);
    this.scanning = undefined;
    if (!this.stopped) this.rescan = setTimeout(() => this.requestScan(), this.rescanMs);
  }

  private async scan(): Promise<void> {
    await this.watchDirectories();
    const found = new Map<string, { spec: WatchSpec; file: string }>();
    for (const dir of this.dirs) {
      let names: string[];
      try {
        names = await fs.readdir(dir);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') this.warnOnce(`readdir ${dir}`, 'cannot read watched directory', err);
        continue;
      }
      const specs = this.specs.filter((s) => s.glob.dir === dir);
      const matched = names.sort().flatMap((name) => {
        const spec = specs.find((s) => s.glob.pattern.test(name));
        return spec ? [{ p: path.join(dir, name), spec }] : [];
      });
      const files = await Promise.all(matched.map(({ p, spec }) => fileOf(p, spec.kind === 'DEVICE_KIND_SENSOR')));
      matched.forEach(({ p, spec }, i) => {
        const file = files[i];
        if (file !== undefined) found.set(p, { spec, file });
      });
    }
    if (this.stopped) return;
    for (const [p, { device, file }] of [...this.present]) {
      if (found.get(p)?.file === file) continue;
      this.present.delete(p);
      this.options.log.info({ path: p, deviceId: device.deviceId, kind: device.kind }, 'device removed');
      this.emit('removed', device);
    }
    const added = [...found].filter(([p]) => !this.present.has(p));
    const kinds = [...new Set(added.map(([, { spec }]) => spec.kind))];
    const listings = new Map(await Promise.all(kinds.map(async (kind) => [kind, await this.listing(kind)] as const)));
    for (const [p, { spec, file }] of added) {
      const device = await this.identify(p, spec.kind, listings.get(spec.kind) ?? []);
      if (this.stopped) return;
      this.present.set(p, { device, file });
      this.options.log.info({ path: p, deviceId: device.deviceId, kind: device.kind }, 'device added');
      this.emit('added', device);
    }
  }

  /** The driver listing of a kind; [] when there is none or it fails (an unreadable sysfs, say). */
  private async listing(kind: DeviceKind): Promise<DiscoveredDevice[]> {
    if (!this.options.list) return [];
    try {
      return await this.options.list(kind);
    } catch (err) {
      this.warnOnce(`list ${kind}`, `cannot list ${kindWord(kind)} devices; they are identified by path`, err);
      return [];
    }
  }

  private async identify(p: string, kind: DeviceKind, listing: DiscoveredDevice[]): Promise<WatchedDevice> {
    let entry = listing.find((d) => d.path === p);
    if (!entry && listing.length > 0) {
      const real = await fs.realpath(p).catch(() => p);
      entry = listing.find((d) => d.path === real);
    }
    if (!entry) return { path: p, kind, deviceId: p, capabilities: [kindWord(kind)], labels: {} };
    return { path: p, kind, deviceId: entry.deviceId ?? p, capabilities: [...entry.capabilities], labels: { ...entry.labels } };
  }

  /**
   * Puts one watch on each watched directory, or on its nearest existing ancestor while it does
   * not exist, and drops watches no longer needed. Runs before each scan's readdir, so whatever
   * changed before a watch was set is still seen by that scan.
   */
  private async watchDirectories(): Promise<void> {
    const wanted = new Map<string, { ino: number; watched: boolean; children: Set<string> }>();
    for (const dir of this.dirs) {
      let at = dir;
      let child = '';
      for (;;) {
        const ino = await directoryIno(at);
        if (ino !== undefined) {
          const w = wanted.get(at) ?? { ino, watched: false, children: new Set<string>() };
          if (child) w.children.add(child);
          else w.watched = true;
          wanted.set(at, w);
          break;
        }
        child = path.basename(at);
        at = path.dirname(at);
      }
    }
    if (this.stopped) return;
    for (const [dir, w] of [...this.watches]) {
      const want = wanted.get(dir);
      if (want && !w.suspect && want.ino === w.ino) continue;
      w.handle.close();
      this.watches.delete(dir);
    }
    for (const [dir, want] of wanted) {
      const existing = this.watches.get(dir);
      if (existing) Object.assign(existing, { watched: want.watched, children: want.children });
      else this.watch(dir, want.ino, want.watched, want.children);
    }
    // A directory created while its ancestor's watch was being set raised no event there: look again.
    for (const [dir, want] of wanted) {
      for (const child of want.children) if ((await directoryIno(path.join(dir, child))) !== undefined) this.again = true;
    }
  }

  private watch(dir: string, ino: number, watched: boolean, children: Set<string>): void {
    let handle: FSWatcher;
    try {
      handle = watch(dir, { persistent: true }, (type, name) => {
        // 'change' is a write or an attribute; only creates, removes and renames matter here.
        if (type !== 'rename') return;
        const w = this.watches.get(dir);
        if (!w || w.handle !== handle) return;
        if (name === path.basename(dir)) w.suspect = true;
        if (w.watched || w.suspect || !name || w.children.has(name)) this.onEvent();
      });
    } catch (err) {
      // ENOSPC (inotify limit) or EACCES, say: the safety rescan still finds devices, more slowly.
      this.warnOnce(`watch ${dir}`, 'cannot watch directory; relying on the periodic rescan', err);
      return;
    }
    handle.on('error', (err) => {
      this.warnOnce(`watch ${dir}`, 'directory watch failed; watching it again', err);
      handle.close();
      if (this.watches.get(dir)?.handle === handle) this.watches.delete(dir);
      this.onEvent();
    });
    this.watches.set(dir, { handle, ino, watched, children, suspect: false });
  }

  /** Logs a recurring problem once per kind, not on every scan. */
  private warnOnce(key: string, message: string, err: unknown): void {
    if (this.reported.has(key)) return;
    this.reported.add(key);
    this.options.log.warn({ error: errorMessage(err), watches: this.options.watches }, message);
  }
}

/**
 * What file a path is now (the link's inode and its target's device, inode and device number), or
 * undefined when it is no device: gone, a dangling link (stat follows symlinks) or a directory,
 * unless the kind's devices are directories (an IIO device is one in sysfs).
 */
async function fileOf(p: string, directories: boolean): Promise<string | undefined> {
  try {
    const [link, target] = await Promise.all([fs.lstat(p), fs.stat(p)]);
    return target.isDirectory() && !directories ? undefined : `${link.ino}:${target.dev}:${target.ino}:${target.rdev}`;
  } catch {
    return undefined;
  }
}

/** The inode of a directory, or undefined when there is none at that path. */
async function directoryIno(dir: string): Promise<number | undefined> {
  try {
    const s = await fs.stat(dir);
    return s.isDirectory() ? s.ino : undefined;
  } catch {
    return undefined;
  }
}
