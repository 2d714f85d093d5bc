import type * as net from 'node:net';
import { errorCode, errorMessage, ProtocolError } from '../errors';
import {
  ComPort,
  type ComPortRequest,
  Control,
  decodeComPortRequest,
  encodeComPortAnswer,
  modemDeltas,
  modemState,
  PURGE_BOTH,
  PURGE_RECEIVE,
} from '../rfc2217/com-port-option';
import { escapeIac } from '../rfc2217/iac-escape';
import { OPT_BINARY, OPT_COM_PORT, OPT_SGA, type TelnetVerb, verbName } from '../rfc2217/telnet-codes';
import { negotiation } from '../rfc2217/telnet-frames';
import { TelnetOptions } from '../rfc2217/telnet-options';
import { type TelnetItem, TelnetParser } from '../rfc2217/telnet-parser';
import { CommandOp, type CommandReply } from '../socket-plane/device-command';
import { type DeviceEvent, DeviceEventType, ModemLine } from '../socket-plane/device-event';
import type { Logger } from '../log';
import type { ConsumerSession } from '../socket-plane/consumer-session';
import type { Labels } from '../telemetry/stats';
import { closeWithin, type PipeOptions } from '../socket-plane/pipe';
import { appGoneOptions, type BridgeContext, DEFAULT_SUBNEGOTIATION_TIMEOUT_MS, type SessionBridge } from './session-bridge';

/** Offered both ways on connect; anything else is refused. */
const OPTIONS = new Set([OPT_BINARY, OPT_SGA, OPT_COM_PORT]);
const EMPTY = Buffer.alloc(0);
/** SerialConfigure's target for each port setting; flow control comes through SET-CONTROL. */
const TARGETS: Partial<Record<ComPort, string>> = {
  [ComPort.SetBaudRate]: 'baudRate',
  [ComPort.SetDataSize]: 'dataBits',
  [ComPort.SetParity]: 'parity',
  [ComPort.SetStopSize]: 'stopBits',
};
/** SET-CONTROL's inbound flow values are the outbound ones plus this. */
const INBOUND = Control.InboundFlowQuery;

/** ModemLine bits of an event's `source`, e.g. "dcd,cts". */
function linesNamed(source: string): number {
  return source.split(',').reduce((bits, name) => bits | (ModemLine[name as keyof typeof ModemLine] ?? 0), 0);
}

/**
 * RFC 2217: a Telnet COM-PORT-OPTION server, so apps written for ser2net or a network serial
 * server work unchanged. Data goes both ways with the IAC escaping and the backpressure of
 * pipeSession; each COM-PORT-OPTION request becomes a device command and is answered with the
 * value in use.
 */
export const bridgeRfc2217: SessionBridge = (app, session, ctx) => new Rfc2217Server(app, session, ctx).start();

class Rfc2217Server {
  private readonly parser = new TelnetParser();
  private readonly options = new TelnetOptions(OPTIONS, OPTIONS);
  /** App items not yet acted on, from `next`. */
  private items: TelnetItem[] = [];
  private next = 0;
  /** A request waits for the device: what the app sent after it waits too, in order. */
  private busy = false;
  /** The session is out of send credit until its drain. */
  private blocked = false;
  private appEnded = false;
  /** The app connection has closed: nothing more can reach it. */
  private appGone = false;
  private goneTimer: NodeJS.Timeout | undefined;
  private readonly gone: Required<PipeOptions>;
  private broken = false;
  /** FLOWCONTROL-SUSPEND: device bytes are held (at most one session window, as no credit goes back). */
  private suspended = false;
  private held: Buffer[] = [];
  private sessionEnded = false;
  private notifySkipped = false;
  /** Device bytes written to the app but not yet flushed: their credit goes back on the app's drain. */
  private unflushed = 0;
  /** Linux raises DTR and RTS when it opens a tty. */
  private dtr = true;
  private rts = true;
  private brk = false;
  private modemMask = 255;
  private modem: number | undefined;
  /** The client speaks COM-PORT-OPTION: modem-state notifications go to it. */
  private comPort = false;
  /** Set while a subnegotiation spans chunks: the client must finish it in time. */
  private subnegotiationTimer: NodeJS.Timeout | undefined;

  private readonly log: Logger;
  private readonly labels: Labels;

  constructor(
    private readonly app: net.Socket,
    private readonly session: ConsumerSession,
    private readonly ctx: BridgeContext,
  ) {
    this.log = ctx.log.child({ mapping: ctx.mapping.id });
    this.labels = { mapping: ctx.mapping.id };
    this.gone = appGoneOptions(ctx);
  }

  start(): void {
    this.send(Buffer.concat(this.options.start().map(([verb, option]) => negotiation(verb, option))));
    this.app.on('data', this.onAppData);
    this.app.on('drain', this.onAppDrain);
    this.app.on('end', this.onAppEnd);
    this.app.on('close', this.onAppClose);
    this.app.on('error', this.onAppError);
    this.session.on('data', this.onSessionData);
    this.session.on('drain', this.onSessionDrain);
    this.session.on('end', this.onSessionEnd);
    this.session.on('event', this.onEvent);
    this.session.once('close', this.onSessionClose);
    this.flow();
  }

  private readonly onAppData = (chunk: Buffer): void => {
    const parsed = this.parser.push(chunk);
    this.items = this.next >= this.items.length ? parsed : this.items.slice(this.next).concat(parsed);
    this.next = 0;
    this.watchSubnegotiation();
    this.pump();
  };

  /** Bytes of an open subnegotiation are bounded by the parser; its time is bounded here. */
  private watchSubnegotiation(): void {
    if (!this.parser.inSubnegotiation) {
      clearTimeout(this.subnegotiationTimer);
      this.subnegotiationTimer = undefined;
      return;
    }
    if (this.subnegotiationTimer) return;
    const ms = this.ctx.subnegotiationTimeoutMs ?? DEFAULT_SUBNEGOTIATION_TIMEOUT_MS;
    this.subnegotiationTimer = setTimeout(() => {
      this.ctx.stats.add('rfc2217_subnegotiation_timeouts', 1, this.labels);
      this.fail(new ProtocolError(`Telnet subnegotiation not finished (IAC SE) within ${ms} ms`));
    }, ms);
  }

  /** Acts on the app's items in order until one has to wait (a device request, or send credit). */
  private pump(): void {
    while (this.next < this.items.length && !this.busy && !this.broken) {
      const item = this.items[this.next] as TelnetItem;
      // A request must not overtake bytes the session still holds for want of credit.
      if (item.kind !== 'data' && this.blocked) break;
      this.next++;
      if (item.kind === 'data') {
        if (!this.session.write(item.data)) this.blocked = true;
      } else if (item.kind === 'negotiate') this.negotiate(item.verb, item.option);
      else if (item.kind === 'subnegotiation') this.subnegotiate(item.option, item.payload);
      else if (item.kind === 'command') this.log.debug({ code: item.code }, 'RFC 2217: Telnet command ignored');
      else this.fail(item.error);
    }
    const idle = !this.busy && this.next >= this.items.length;
    if (idle && this.appEnded && !this.session.closed) this.session.end();
    this.flow();
  }

  private flow(): void {
    if (this.app.destroyed) return;
    if (this.busy || this.blocked || this.next < this.items.length) this.app.pause();
    else this.app.resume();
  }

  private negotiate(verb: TelnetVerb, option: number): void {
    const answer = this.options.receive(verb, option);
    if (answer) this.send(negotiation(...answer));
    this.log.debug({ got: `${verbName(verb)} ${option}`, sent: answer && `${verbName(answer[0])} ${option}` }, 'RFC 2217: negotiation');
    if (!this.comPort && this.options.enabled(OPT_COM_PORT)) this.wait(this.startComPort());
  }

  /**
   * The client speaks RFC 2217: it gets the modem state once. pyserial may never send WILL or DO
   * COM-PORT-OPTION (our offer reached it first and counted as the answer to its own), so its first
   * COM-PORT-OPTION request starts this too.
   */
  private startComPort(): Promise<void> {
    this.comPort = true;
    return this.pollModem(false);
  }

  private subnegotiate(option: number, payload: Buffer): void {
    let request: ComPortRequest;
    try {
      if (option !== OPT_COM_PORT) throw new ProtocolError(`subnegotiation of option ${option}`);
      request = decodeComPortRequest(payload);
    } catch (err) {
      this.ctx.stats.add('rfc2217_ignored', 1, this.labels);
      this.log.info({ error: errorMessage(err) }, 'RFC 2217: request ignored');
      return;
    }
    this.wait(this.comPort ? this.request(request) : this.startComPort().then(() => this.request(request)));
  }

  /** Holds the app's later items until `work` is done. */
  private wait(work: Promise<void> | undefined): void {
    if (!work) return;
    this.busy = true;
    work
      .catch((err: unknown) => this.log.warn({ error: errorMessage(err) }, 'RFC 2217: request failed'))
      .finally(() => {
        this.busy = false;
        this.pump();
      });
  }

  private request({ command, value, text }: ComPortRequest): Promise<void> | undefined {
    const target = TARGETS[command];
    if (target) return this.configure(command, target, value).then((inUse) => this.answer(command, inUse));
    switch (command) {
      case ComPort.Signature:
        if (text.length > 0) this.log.info({ signature: text.toString('latin1') }, 'RFC 2217: client signature');
        this.answer(command, Buffer.from(`devicemesh sidecar, mapping ${this.ctx.mapping.id}`, 'latin1'));
        return undefined;
      case ComPort.SetControl:
        return this.control(value);
      case ComPort.NotifyModemState:
        return this.pollModem(true);
      case ComPort.FlowControlSuspend:
        this.suspended = true;
        return undefined;
      case ComPort.FlowControlResume:
        this.resume();
        return undefined;
      case ComPort.SetLineStateMask:
        // No line-state source: the mask is kept as asked, nothing is ever notified.
        this.answer(command, value);
        return undefined;
      case ComPort.SetModemStateMask:
        this.modemMask = value;
        this.answer(command, value);
        return this.pollModem(false);
      case ComPort.PurgeData:
        return this.purge(value);
      default:
        this.ignored(`${ComPort[command]} is not a client request`);
        return undefined;
    }
  }

  private async control(value: number): Promise<void> {
    const answer = (v: number): void => this.answer(ComPort.SetControl, v);
    if (value <= Control.FlowHardware) return answer(await this.configure(ComPort.SetControl, 'flowControl', value));
    if (value >= Control.InboundFlowQuery && value <= Control.InboundFlowHardware) {
      const inUse = await this.configure(ComPort.SetControl, 'flowControl', value === INBOUND ? 0 : value - INBOUND);
      return answer(inUse + INBOUND);
    }
    switch (value) {
      case Control.FlowDcd:
      case Control.FlowDsr:
      case Control.InboundFlowDtr: {
        const inUse = await this.configure(ComPort.SetControl, 'flowControl', 0);
        this.refused('SetControl', value, 'DCD, DTR and DSR flow control are not supported');
        return answer(value === Control.InboundFlowDtr ? inUse + INBOUND : inUse);
      }
      case Control.BreakQuery:
        return answer(this.brk ? Control.BreakOn : Control.BreakOff);
      case Control.DtrQuery:
        return answer(this.dtr ? Control.DtrOn : Control.DtrOff);
      case Control.RtsQuery:
        return answer(this.rts ? Control.RtsOn : Control.RtsOff);
      case Control.BreakOn:
      case Control.BreakOff:
        return answer(await this.setLine('brk', value, Control.BreakOn, Control.BreakOff));
      case Control.DtrOn:
      case Control.DtrOff:
        return answer(await this.setLine('dtr', value, Control.DtrOn, Control.DtrOff));
      case Control.RtsOn:
      case Control.RtsOff:
        return answer(await this.setLine('rts', value, Control.RtsOn, Control.RtsOff));
      default:
        return this.ignored(`SET-CONTROL value ${value} is unknown`);
    }
  }

  /** SerialSetLine: resolves with SET-CONTROL's code for the line's state in use. */
  private async setLine(line: 'brk' | 'dtr' | 'rts', requested: number, onCode: number, offCode: number): Promise<number> {
    const on = requested === onCode;
    try {
      await this.device(CommandOp.SerialSetLine, line, on ? 1 : 0);
      this[line] = on;
    } catch (err) {
      this.refused('SetControl', requested, errorMessage(err));
    }
    return this[line] ? onCode : offCode;
  }

  private async purge(value: number): Promise<void> {
    if (value < PURGE_RECEIVE || value > PURGE_BOTH) return this.ignored(`PURGE-DATA value ${value} is unknown`);
    await this.device(CommandOp.SerialFlush, '', 0).catch((err: unknown) => this.refused('PurgeData', value, errorMessage(err)));
    // After the flush: device bytes that came before its answer are from before the purge.
    if (value & PURGE_RECEIVE) this.dropHeld();
    this.answer(ComPort.PurgeData, value);
  }

  /** SerialConfigure: resolves with the value in use, the requested one once applied. */
  private async configure(command: ComPort, target: string, requested: number): Promise<number> {
    try {
      const { value } = await this.device(CommandOp.SerialConfigure, target, requested);
      if (requested !== 0 && value !== requested) this.refused(ComPort[command], requested, `the mapping pins ${target} to ${value}`);
      return value;
    } catch (err) {
      const inUse = requested === 0 ? 0 : await this.device(CommandOp.SerialConfigure, target, 0).then((r) => r.value, () => 0);
      this.refused(ComPort[command], requested, errorMessage(err));
      return inUse;
    }
  }

  private async pollModem(poll: boolean): Promise<void> {
    if (this.modemMask === 0 && !poll) return;
    try {
      const { value } = await this.device(CommandOp.SerialGetLines, '', 0);
      this.modem = modemState(value);
      this.answer(ComPort.NotifyModemState, this.modem & this.modemMask);
    } catch (err) {
      this.log.debug({ error: errorMessage(err) }, 'RFC 2217: modem lines unreadable; no NOTIFY-MODEMSTATE');
    }
  }

  private readonly onEvent = (event: DeviceEvent): void => {
    if (event.type !== DeviceEventType.ModemLines) return;
    const now = modemState(event.value);
    const before = this.modem ?? now ^ modemState(linesNamed(event.source));
    this.modem = now;
    const value = (now | modemDeltas(before, now)) & this.modemMask;
    if (value === 0 || !this.comPort) return;
    if (this.suspended) this.notifySkipped = true;
    else this.answer(ComPort.NotifyModemState, value);
  };

  private device(op: CommandOp, target: string, value: number): Promise<CommandReply> {
    return this.session.command({ op, target, value, data: EMPTY });
  }

  private answer(command: ComPort, value: number | Buffer): void {
    this.send(encodeComPortAnswer(command, value));
  }

  private refused(command: string, requested: number, reason: string): void {
    this.ctx.stats.add('rfc2217_refused', 1, { command });
    this.log.warn({ command, requested, reason }, 'RFC 2217: request not applied as asked; answered with the value in use');
  }

  private ignored(reason: string): void {
    this.ctx.stats.add('rfc2217_ignored', 1, this.labels);
    this.log.info({ reason }, 'RFC 2217: request ignored');
  }

  /** Broken Telnet framing: this connection is closed, nothing else is touched. */
  private fail(error: ProtocolError): void {
    this.broken = true;
    this.items = [];
    this.next = 0;
    this.ctx.stats.add('rfc2217_protocol_errors', 1, this.labels);
    this.log.warn({ error: error.message }, 'RFC 2217: client broke the Telnet framing; closing its connection');
    clearTimeout(this.subnegotiationTimer);
    this.app.destroy();
  }

  private send(bytes: Buffer): void {
    if (!this.app.destroyed && !this.session.closed) this.app.write(bytes);
  }

  /* ---- device → app ---- */

  private readonly onSessionData = (chunk: Buffer): void => {
    if (this.suspended) this.held.push(chunk);
    else this.deliver(chunk);
  };

  private deliver(chunk: Buffer): void {
    if (this.appGone || this.app.destroyed) {
      this.drop(chunk.length);
      return;
    }
    if (this.app.write(escapeIac(chunk))) this.session.consumed(chunk.length);
    else this.unflushed += chunk.length;
  }

  private resume(): void {
    this.suspended = false;
    const held = this.held;
    this.held = [];
    for (const chunk of held) this.deliver(chunk);
    if (this.notifySkipped && this.modem !== undefined) this.answer(ComPort.NotifyModemState, this.modem & this.modemMask);
    this.notifySkipped = false;
    if (this.sessionEnded) this.onSessionEnd();
  }

  private dropHeld(): void {
    for (const chunk of this.held) this.session.consumed(chunk.length);
    this.held = [];
  }

  /** Device bytes the app will never get: their credit goes back, so the agent is not left waiting. */
  private drop(n: number): void {
    this.session.consumed(n);
    this.gone.dropped(n);
  }

  private readonly onAppDrain = (): void => {
    const n = this.unflushed;
    this.unflushed = 0;
    if (n > 0) this.session.consumed(n);
  };

  private readonly onSessionDrain = (): void => {
    this.blocked = false;
    this.pump();
  };

  private readonly onSessionEnd = (): void => {
    this.sessionEnded = true;
    if (!this.suspended && !this.app.destroyed) this.app.end();
  };

  private readonly onAppEnd = (): void => {
    this.appEnded = true;
    this.pump();
  };

  /** The app is gone: what it was sent and held for it is dropped, and its session has APP_GONE_CLOSE_MS to finish. */
  private readonly onAppClose = (): void => {
    this.appGone = true;
    const unflushed = this.unflushed;
    this.unflushed = 0;
    if (unflushed > 0) {
      if (this.app.writableFinished) this.session.consumed(unflushed);
      else this.drop(unflushed);
    }
    for (const chunk of this.held) this.drop(chunk.length);
    this.held = [];
    this.onAppEnd();
    this.goneTimer = closeWithin(this.session, this.gone);
  };

  private readonly onAppError = (err: Error): void =>
    this.session.reset({ code: errorCode(err, 'UNAVAILABLE'), message: errorMessage(err) });

  private readonly onSessionClose = (err: Error | undefined): void => {
    clearTimeout(this.subnegotiationTimer);
    clearTimeout(this.goneTimer);
    this.app.off('data', this.onAppData);
    this.app.off('drain', this.onAppDrain);
    this.app.off('end', this.onAppEnd);
    this.app.off('close', this.onAppClose);
    this.app.off('error', this.onAppError);
    this.held = [];
    if (err) this.app.destroy();
    else if (!this.app.destroyed) this.app.end();
  };
}
