import * as fs from 'node:fs';
import * as path from 'node:path';
import { DeviceMeshError, errorMessage, UnavailableError } from '../src/errors';
import { type ControlRequest, lineWords } from '../src/pty/line-control';
import { type PtyLineSettings, ptyLineSettings, withPtyLineSettings } from '../src/pty/termios2';
import type { Mapping } from '../src/proto/types';
import type { ConsumerSession } from '../src/socket-plane/consumer-session';
import { bindingLabels } from '../src/telemetry/binding-labels';
import type { Labels } from '../src/telemetry/stats';
import { accountId } from '../src/util/account-ids';
import { AppSessions, ByteReport } from './app-sessions';
import type { ListenerContext } from './listener';
import { PtyBridge } from './pty-bridge';
import { PtyControlServer } from './pty-control-server';
import { PtyMaster, type PtyMasterSink } from './pty-master';
import { drainPeriod, type VirtualListener } from './virtual-listener';

const DEFAULT_MODE = 0o660;

interface Access {
  uid?: number;
  gid?: number;
  mode: number;
}

async function accessOf(mapping: Mapping): Promise<Access> {
  const v = mapping.virtual;
  const [uid, gid] = await Promise.all([accountId('passwd', v?.owner), accountId('group', v?.group)]);
  return { ...(uid === undefined ? {} : { uid }), ...(gid === undefined ? {} : { gid }), mode: v?.mode || DEFAULT_MODE };
}

/** Points `link` at `target` in one rename, replacing whatever was there (a link left by an earlier sidecar). */
function relink(target: string, link: string): void {
  fs.mkdirSync(path.dirname(link), { recursive: true, mode: 0o755 });
  const temp = `${link}.${process.pid}.tmp`;
  fs.rmSync(temp, { force: true });
  fs.symlinkSync(target, temp);
  fs.renameSync(temp, link);
}

/**
 * The virtual device of one `pty` mapping: a pseudo-terminal whose slave is linked at the
 * binding's `virtual.path` (owner, group, mode from the binding, default 0660), so an app opens it
 * as a local serial port. Each time an app opens the port a session to the agent opens, and it
 * ends when the app closes the port (the agent closes the device after its last session, as a real
 * port drops DTR/RTS on close with HUPCL). A session that ends from the device side (the device
 * pulled, the agent gone) hangs the app up: the pty is closed, so the app reads EOF/EIO as from an
 * unplugged adapter, and a new one is linked at the same path for the app to open again. Beside the
 * port, `<path>.control` carries what a pty cannot (PtyControlServer).
 */
export class PtyDevice implements VirtualListener, PtyMasterSink {
  private master: PtyMaster;
  private bridge: PtyBridge | undefined;
  private session: ConsumerSession | undefined;
  private controlServer: PtyControlServer | undefined;
  /** Byte counts of the current master already added to the stats. */
  private readonly bytes: ByteReport;
  private readonly sessions: AppSessions;
  /** What the slave's termios shows between apps. */
  private shown: PtyLineSettings;
  private closing = false;
  private lines: number | undefined;
  private readonly labels: Labels;

  private constructor(
    private current: Mapping,
    private access: Access,
    private readonly ctx: ListenerContext,
  ) {
    this.labels = bindingLabels(current);
    this.bytes = new ByteReport(ctx.stats, this.labels);
    this.sessions = new AppSessions(ctx, () => this.current);
    this.master = this.createPty();
    this.shown = ptyLineSettings(this.master.termios());
  }

  /** Makes the pty, its link and its control socket; rejects when any cannot be made. */
  static async start(mapping: Mapping, ctx: ListenerContext): Promise<PtyDevice> {
    const device = new PtyDevice(mapping, await accessOf(mapping), ctx);
    try {
      device.controlServer = await PtyControlServer.start(`${device.address}.control`, device, device.access, ctx.stats, ctx.log, mapping.id);
    } catch (err) {
      await device.close('its control socket could not be made');
      throw err;
    }
    ctx.log.info({ mapping: mapping.id, path: device.address, pty: device.master.slavePath, extprocLocked: device.master.extprocLocked, agent: mapping.agentAddress }, 'virtual serial port ready');
    return device;
  }

  get address(): string {
    return this.current.virtual?.path ?? '';
  }

  get mapping(): Mapping {
    return this.current;
  }

  get connectionCount(): number {
    return this.master.isAppOpen ? 1 : 0;
  }

  /** What /config_dump shows of the port beside the mapping. */
  state(): Record<string, string> {
    return {
      pty: this.master.slavePath,
      appOpen: String(this.master.isAppOpen),
      modemLines: this.lines === undefined ? 'not reported' : lineWords(this.lines),
    };
  }

  update(mapping: Mapping): void {
    this.current = mapping;
    this.sessions.changed();
    accessOf(mapping).then(
      (access) => {
        this.access = access;
        this.applyAccess(this.master.slavePath);
      },
      (err: unknown) => this.ctx.log.warn({ mapping: mapping.id, error: errorMessage(err) }, 'pty: new owner/group not applied'),
    );
  }

  withdraw(): void {
    this.sessions.withdraw();
  }

  /** Moves the master's byte counts into the stats (plain fields on the data path, read only when someone looks). */
  flushStats(): void {
    this.bytes.report(this.master.bytesRead, this.master.bytesWritten);
  }

  async drain(timeoutMs: number, reason: string): Promise<void> {
    await drainPeriod(() => this.connectionCount, timeoutMs);
    await this.close(reason);
  }

  /** Withdrawn: the app is hung up, the link and the control socket go. */
  async close(reason: string): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    this.session?.reset({ code: 'UNAVAILABLE', message: reason });
    this.bridge?.finish();
    this.master.close();
    try {
      if (fs.readlinkSync(this.address) === this.master.slavePath) fs.unlinkSync(this.address);
    } catch {
      // Already gone, or replaced by someone else's: left alone.
    }
    this.flushStats();
    await this.controlServer?.close();
    this.ctx.log.info({ mapping: this.current.id, path: this.address, reason }, 'virtual serial port removed');
  }

  control(request: ControlRequest): Promise<string> {
    if (!this.bridge) return Promise.reject(new UnavailableError(`no app has ${this.address} open: the device session opens with the port`));
    return this.bridge.control(request);
  }

  /* ---- PtyMasterSink ---- */

  appOpened(): void {
    const mapping = this.current;
    const { stats, log } = this.ctx;
    const master = this.master;
    const generation = master.generation;
    stats.add('app_connections', 1, this.labels);
    this.sessions.open(mapping).then(
      (session) => {
        if (this.closing || generation !== master.generation || !master.isAppOpen) {
          session.end();
          return;
        }
        this.session = session;
        const bridge = new PtyBridge(master, session, { mappingId: mapping.id, stats, log, onModemLines: (bits) => this.modemLines(bits) }, this.shown);
        this.bridge = bridge;
        session.once('close', (err: DeviceMeshError | undefined) => this.sessionClosed(bridge, err));
        bridge.start();
      },
      (err: unknown) => {
        this.sessions.refused(err, mapping, undefined, 'hanging the app up');
        if (generation === master.generation) this.hangUp();
      },
    );
  }

  packet(status: number, data: Buffer): boolean {
    return this.bridge?.packet(status, data) ?? false;
  }

  drained(): void {
    this.bridge?.drained();
  }

  appClosed(): void {
    const bridge = this.bridge;
    this.bridge = undefined;
    this.session = undefined;
    if (!bridge) return;
    bridge.appClosed();
    this.showBetweenApps(bridge.settingsAfter);
  }

  /* ---- ---- */

  private sessionClosed(bridge: PtyBridge, err: DeviceMeshError | undefined): void {
    if (err) this.ctx.log.info({ ...this.labels, code: err.code, error: err.message }, 'session ended with an error');
    if (this.bridge !== bridge) return;
    // Ended from the device side while the app has the port: the app is hung up, as by an unplugged adapter.
    this.bridge = undefined;
    this.session = undefined;
    bridge.finish();
    this.hangUp(bridge.settingsAfter);
  }

  /** The port shows the device's settings as it opens, so the next app starts from them. */
  private showBetweenApps(settings: PtyLineSettings): void {
    this.shown = settings;
    try {
      const t = this.master.termios();
      const has = ptyLineSettings(t);
      if (has.baudRate !== settings.baudRate || has.stopBits !== settings.stopBits || has.flowControl !== settings.flowControl) {
        this.master.setTermios(withPtyLineSettings(t, settings));
      }
    } catch (err) {
      this.ctx.log.debug({ error: errorMessage(err) }, 'pty: settings not shown between apps');
    }
  }

  private hangUp(settings: PtyLineSettings = this.shown): void {
    if (this.closing) return;
    this.ctx.stats.add('pty_hangups', 1, this.labels);
    this.flushStats();
    try {
      this.master.replace();
      this.bytes.restart();
      this.link();
      this.showBetweenApps(settings);
    } catch (err) {
      this.ctx.log.error({ mapping: this.current.id, error: errorMessage(err) }, 'pty: cannot make a new pseudo-terminal after a hang-up');
    }
  }

  private createPty(): PtyMaster {
    const master = new PtyMaster();
    this.master = master;
    try {
      this.link();
    } catch (err) {
      master.close();
      throw err;
    }
    master.start(this);
    return master;
  }

  private link(): void {
    this.applyAccess(this.master.slavePath);
    relink(this.master.slavePath, this.address);
  }

  private applyAccess(slavePath: string): void {
    fs.chmodSync(slavePath, this.access.mode);
    if (this.access.uid !== undefined || this.access.gid !== undefined) fs.chownSync(slavePath, this.access.uid ?? -1, this.access.gid ?? -1);
  }

  private modemLines(bits: number): void {
    this.lines = bits;
    this.controlServer?.modemLines(bits);
  }
}
