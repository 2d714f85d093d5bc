import { DeviceMeshError, errorMessage } from '../src/errors';
import type { Logger } from '../src/log';
import { type ControlRequest, lineWords, settingWord } from '../src/pty/line-control';
import { packetFlagNames, PacketStatus } from '../src/pty/packet-mode';
import { type PtyLineSettings, ptyLineSettings, type Termios2, withPtyLineSettings } from '../src/pty/termios2';
import { CommandOp, type CommandReply } from '../src/socket-plane/device-command';
import { type DeviceEvent, DeviceEventType } from '../src/socket-plane/device-event';
import type { ConsumerSession } from '../src/socket-plane/consumer-session';
import type { Labels, Stats } from '../src/telemetry/stats';
import type { PtyMaster } from './pty-master';

const EMPTY = Buffer.alloc(0);
const SETTINGS = ['baudRate', 'stopBits', 'flowControl'] as const;
type Setting = (typeof SETTINGS)[number];

export interface PtyBridgeContext {
  mappingId: string;
  stats: Stats;
  log: Logger;
  /** The device's modem lines changed (the pty cannot show them: the control channel does). */
  onModemLines(bits: number): void;
}

/**
 * One app's time with the port open: its pty packets to the session, the session's bytes to the
 * pty, both with backpressure (reading stops while the session has no credit; credit goes back
 * once the pty took the bytes). A termios change the app makes becomes SerialConfigure commands,
 * as RFC 2217's settings do, and the value in use (the requested one, or the pinned one) is
 * written back into the slave's termios, so the app's tcgetattr reads what the device has.
 * B0 drops DTR (POSIX hang-up); a flush becomes SerialFlush. Reading waits while a change is
 * applied, so the bytes after a tcsetattr go out with the new settings.
 */
export class PtyBridge {
  /** The settings the slave's termios shows now (what the app last saw or set). */
  private shown: PtyLineSettings;
  /** The device's settings when this session opened: the port shows them again once the app leaves. */
  private opened: PtyLineSettings | undefined;
  private dtr = true;
  private busy: Promise<unknown> = Promise.resolve();
  private pendingWork = 0;
  /** The session is out of send credit until its drain. */
  private blocked = false;
  private unflushed = 0;
  private finished = false;
  private readonly labels: Labels;

  constructor(
    private readonly master: PtyMaster,
    private readonly session: ConsumerSession,
    private readonly ctx: PtyBridgeContext,
    shown: PtyLineSettings,
  ) {
    this.shown = shown;
    this.labels = { mapping: ctx.mappingId };
    session.on('data', this.onSessionData);
    session.on('drain', this.onSessionDrain);
    session.on('event', this.onEvent);
  }

  /** Takes the settings the app made before the session opened, shows the device's for the rest, then reads. */
  start(): void {
    this.serialized(async () => {
      const inUse = await this.queryAll();
      this.opened = inUse;
      const t = this.master.termios();
      const asked = ptyLineSettings(t);
      const next = { ...inUse };
      for (const s of SETTINGS) if (asked[s] !== this.shown[s]) next[s] = await this.apply(s, asked[s]);
      this.show(next, t);
    });
  }

  /** The settings the port shows once this app has gone (the device's as opened). */
  get settingsAfter(): PtyLineSettings {
    return this.opened ?? this.shown;
  }

  /* ---- from the master ---- */

  packet(status: number, data: Buffer): boolean {
    if (this.finished) return false;
    if (status === PacketStatus.data) {
      if (this.session.write(data)) return !this.blocked && this.pendingWork === 0;
      this.blocked = true;
      return false;
    }
    const flags = packetFlagNames(status);
    for (const flag of flags) this.ctx.stats.add('pty_packets', 1, { ...this.labels, status: flag });
    if (status & (PacketStatus.flushRead | PacketStatus.flushWrite)) this.serialized(() => this.flush(status));
    if (status & PacketStatus.ioctl) this.serialized(() => this.termiosChanged());
    return this.pendingWork === 0;
  }

  drained(): void {
    const n = this.unflushed;
    this.unflushed = 0;
    if (n > 0) this.session.consumed(n);
  }

  /** The app closed the port: the device session ends (the agent closes the device after its last one, dropping DTR/RTS). */
  appClosed(): void {
    this.finish();
    this.session.end();
  }

  /** The session is gone: nothing more goes either way. */
  finish(): void {
    if (this.finished) return;
    this.finished = true;
    this.session.off('data', this.onSessionData);
    this.session.off('drain', this.onSessionDrain);
    this.session.off('event', this.onEvent);
    this.drained();
  }

  /** A request of the control channel: runs in order with the app's changes; resolves with its answer line. */
  control(request: ControlRequest): Promise<string> {
    return this.serialized(async () => {
      switch (request.verb) {
        case 'break':
          await this.device(CommandOp.SerialBreak, '', request.ms);
          return `ok break ${request.ms}`;
        case 'dtr':
        case 'rts': {
          const { value } = await this.device(CommandOp.SerialSetLine, request.verb, request.on ? 1 : 0);
          if (request.verb === 'dtr') this.dtr = value !== 0;
          return `ok ${request.verb} ${value}`;
        }
        case 'lines': {
          const { value } = await this.device(CommandOp.SerialGetLines, '', 0);
          return `ok lines ${lineWords(value)}`;
        }
        case 'set': {
          const inUse = await this.configure(request.setting, request.value);
          const s = SETTINGS.find((name) => name === request.setting);
          if (s) this.show({ ...this.shown, [s]: inUse });
          return `ok ${request.setting} ${settingWord(request.setting, inUse)}`;
        }
      }
    });
  }

  /* ---- settings ---- */

  private async termiosChanged(): Promise<void> {
    const t = this.master.termios();
    this.master.restoreExtproc();
    const asked = ptyLineSettings(t);
    const next = { ...this.shown };
    for (const s of SETTINGS) if (asked[s] !== this.shown[s]) next[s] = await this.apply(s, asked[s]);
    this.show(next, t);
  }

  /** One setting the app asked for; resolves with the value in use. B0 is DTR off, and leaves the baud rate as it is. */
  private async apply(setting: Setting, asked: number): Promise<number> {
    if (setting === 'baudRate' && asked === 0) {
      await this.setDtr(false);
      return 0;
    }
    if (setting === 'baudRate' && !this.dtr) await this.setDtr(true);
    return this.configure(setting, asked);
  }

  private async setDtr(on: boolean): Promise<void> {
    try {
      const { value } = await this.device(CommandOp.SerialSetLine, 'dtr', on ? 1 : 0);
      this.dtr = value !== 0;
    } catch (err) {
      this.refused('dtr', on ? 1 : 0, errorMessage(err));
    }
  }

  /** SerialConfigure: resolves with the value in use, the requested one once applied. */
  private async configure(target: string, requested: number): Promise<number> {
    try {
      const { value } = await this.device(CommandOp.SerialConfigure, target, requested);
      if (value !== requested) this.refused(target, requested, `the mapping pins ${target} to ${value}`);
      return value;
    } catch (err) {
      this.refused(target, requested, errorMessage(err));
      return this.device(CommandOp.SerialConfigure, target, 0).then((r) => r.value, () => requested);
    }
  }

  private async queryAll(): Promise<PtyLineSettings> {
    const read = (s: Setting): Promise<number> => this.device(CommandOp.SerialConfigure, s, 0).then((r) => r.value, () => this.shown[s]);
    return { baudRate: await read('baudRate'), stopBits: await read('stopBits'), flowControl: await read('flowControl') };
  }

  /**
   * Writes the settings in use into the slave's termios where they differ from what the app asked
   * (`read`, the termios the change was computed from). If the app changed the termios again
   * meanwhile, nothing is written: its change is pending as a packet and is compared with `next`.
   */
  private show(next: PtyLineSettings, read?: Termios2): void {
    this.shown = next;
    if (this.finished) return;
    const t = this.master.termios();
    const has = ptyLineSettings(t);
    const asked = read ? ptyLineSettings(read) : has;
    if (SETTINGS.some((s) => has[s] !== asked[s])) return;
    if (SETTINGS.some((s) => has[s] !== next[s])) this.master.setTermios(withPtyLineSettings(t, next));
  }

  private async flush(status: number): Promise<void> {
    // The app threw its input away: so do the bytes still waiting for room in the pty.
    if (status & PacketStatus.flushRead) this.ctx.stats.add('pty_flushed_bytes', this.master.discardQueued(), this.labels);
    await this.device(CommandOp.SerialFlush, '', 0).catch((err: unknown) => this.refused('flush', status, errorMessage(err)));
  }

  private refused(setting: string, requested: number, reason: string): void {
    this.ctx.stats.add('pty_settings_refused', 1, { ...this.labels, setting });
    this.ctx.log.warn({ mapping: this.ctx.mappingId, setting, requested, reason }, 'pty: setting not applied as asked; the port shows the value in use');
  }

  private device(op: CommandOp, target: string, value: number): Promise<CommandReply> {
    return this.session.command({ op, target, value, data: EMPTY });
  }

  /** Work that must finish before the app's next bytes are read. */
  private serialized<T>(work: () => Promise<T>): Promise<T> {
    this.pendingWork++;
    const run = this.busy.then(work);
    this.busy = run
      .catch((err: unknown) => this.ctx.log.warn({ mapping: this.ctx.mappingId, error: errorMessage(err), code: err instanceof DeviceMeshError ? err.code : undefined }, 'pty: request failed'))
      .finally(() => {
        this.pendingWork--;
        if (this.pendingWork === 0 && !this.blocked && !this.finished) this.master.resume();
      });
    return run;
  }

  /* ---- from the session ---- */

  private readonly onSessionData = (chunk: Buffer): void => {
    if (this.master.write(chunk)) this.session.consumed(chunk.length);
    else this.unflushed += chunk.length;
  };

  private readonly onSessionDrain = (): void => {
    this.blocked = false;
    if (this.pendingWork === 0 && !this.finished) this.master.resume();
  };

  private readonly onEvent = (event: DeviceEvent): void => {
    if (event.type === DeviceEventType.ModemLines) this.ctx.onModemLines(event.value);
  };
}
