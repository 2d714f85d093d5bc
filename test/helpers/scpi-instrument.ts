import { autoDetect } from '@serialport/bindings-cpp';
import { SerialPortStream } from '@serialport/stream';
import { pollForEveryWaiter } from '../../agent/drivers/poller-workaround';

export interface ScpiInstrumentOptions {
  terminator?: string;
  identity?: string;
}

/**
 * A SCPI instrument on the far end of a pty pair, answering as a bench multimeter does over
 * RS-232 or USBTMC: *IDN?, *RST, *CLS, *OPC?, VOLTage <v>, MEASure:VOLTage? (the set voltage, in
 * NR3), MEASure:SLOW? <ms> (the same, <ms> later), TRACe:DATA? (a definite-length block of `trace`),
 * SYSTem:ERRor[:NEXT]? (its error queue). An unknown header queues -113 "Undefined header" and,
 * as on real instruments, an unknown query gets no answer. Headers match in long or short form,
 * in any case.
 */
export class ScpiInstrument {
  voltage = 0;
  trace: Buffer = Buffer.alloc(0);
  /** Every command received, in order. */
  readonly received: string[] = [];
  private readonly errors: Array<[number, string]> = [];
  private pending = '';
  private readonly timers = new Set<NodeJS.Timeout>();

  private constructor(
    private readonly stream: SerialPortStream,
    private readonly terminator: string,
    private readonly identity: string,
  ) {
    stream.on('data', (chunk: Buffer) => this.onData(chunk));
    stream.on('error', () => undefined);
  }

  static open(path: string, options: ScpiInstrumentOptions = {}): Promise<ScpiInstrument> {
    const stream = new SerialPortStream({ binding: autoDetect(), path, baudRate: 9600, autoOpen: false });
    return new Promise((resolve, reject) => {
      stream.open((err) => {
        if (err) {
          reject(err);
          return;
        }
        pollForEveryWaiter(stream.port);
        const identity = options.identity ?? 'DEVICEMESH,SIM-DMM,SN0001,1.0.0';
        resolve(new ScpiInstrument(stream, options.terminator ?? '\n', identity));
      });
    });
  }

  private onData(chunk: Buffer): void {
    this.pending += chunk.toString('latin1');
    let end: number;
    while ((end = this.pending.indexOf(this.terminator)) >= 0) {
      const command = this.pending.slice(0, end).trim();
      this.pending = this.pending.slice(end + this.terminator.length);
      this.received.push(command);
      this.execute(command);
    }
  }

  private answer(text: string | Buffer): void {
    this.stream.write(Buffer.concat([Buffer.from(text), Buffer.from(this.terminator)]));
  }

  private queueError(code: number, message: string): void {
    if (this.errors.length < 10) this.errors.push([code, message]);
    else this.errors[9] = [-350, 'Queue overflow'];
  }

  private execute(command: string): void {
    const space = command.search(/\s/);
    const header = space < 0 ? command : command.slice(0, space);
    const argument = space < 0 ? '' : command.slice(space).trim();
    // NR3 as instruments send it: +3.300000E+00.
    const nr3 = (): string => (this.voltage >= 0 ? '+' : '') + this.voltage.toExponential(6).toUpperCase().replace(/E([+-])(\d)$/, 'E$10$2');
    if (matches(header, '*IDN?')) this.answer(this.identity);
    else if (matches(header, '*RST')) this.voltage = 0;
    else if (matches(header, '*CLS')) this.errors.length = 0;
    else if (matches(header, '*OPC?')) this.answer('1');
    else if (matches(header, 'VOLTage')) {
      const v = Number(argument);
      if (argument === '' || !Number.isFinite(v)) this.queueError(-104, 'Data type error');
      else this.voltage = v;
    } else if (matches(header, 'MEASure:VOLTage?')) this.answer(nr3());
    else if (matches(header, 'MEASure:SLOW?')) {
      const value = nr3();
      const delayMs = Number(argument);
      if (argument === '' || !Number.isInteger(delayMs) || delayMs < 0) {
        this.queueError(-104, 'Data type error');
        return;
      }
      const timer = setTimeout(() => {
        this.timers.delete(timer);
        this.answer(value);
      }, delayMs);
      this.timers.add(timer);
    } else if (matches(header, 'TRACe:DATA?')) {
      const length = String(this.trace.length);
      this.answer(Buffer.concat([Buffer.from(`#${length.length}${length}`), this.trace]));
    } else if (matches(header, 'SYSTem:ERRor?') || matches(header, 'SYSTem:ERRor:NEXT?')) {
      const [code, message] = this.errors.shift() ?? [0, 'No error'];
      this.answer(`${code},"${message}"`);
    } else this.queueError(-113, 'Undefined header');
  }

  close(): Promise<void> {
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
    if (!this.stream.isOpen) return Promise.resolve();
    return new Promise((resolve) => this.stream.close(() => resolve()));
  }
}

/**
 * SCPI header matching: each node of `pattern` ("MEASure:VOLTage?") may be sent whole or as its
 * upper-case short form ("MEAS:VOLT?"), in any case.
 */
function matches(header: string, pattern: string): boolean {
  const query = pattern.endsWith('?');
  if (header.endsWith('?') !== query) return false;
  const sent = (query ? header.slice(0, -1) : header).replace(/^:/, '').split(':');
  const nodes = (query ? pattern.slice(0, -1) : pattern).split(':');
  if (sent.length !== nodes.length) return false;
  return nodes.every((node, i) => {
    const word = sent[i].toUpperCase();
    const short = node.replace(/[a-z]/g, '');
    return word === node.toUpperCase() || word === short;
  });
}
