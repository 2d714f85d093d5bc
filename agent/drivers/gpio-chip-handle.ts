import { DeviceError, UnsupportedError, ValidationError } from '../../src/errors';
import { type CommandReply, CommandOp, type DeviceCommand } from '../../src/socket-plane/device-command';
import { type DeviceEvent, DeviceEventType, eventTimestamp } from '../../src/socket-plane/device-event';
import { ByteLessStream } from './byte-less-stream';
import type { DeviceConfig, DeviceEventListener, DeviceHandle } from './device-driver';
import { type GpioLinePlan, type GpioSettings, parseGpioSettings, planGpioLines } from './gpio-settings';
import type { GpioEdgeEvent } from './gpiod-output';
import type { GpiodProcess, GpiodTools, GpioMonitor } from './gpiod-tools';

interface LineState {
  plan: GpioLinePlan;
  /** The gpioset driving it: an output has one, an input none. */
  holder: GpiodProcess | null;
  /** What it is driven to (output) or was last read or seen to edge to (input). */
  value: 0 | 1;
}

const EMPTY = Buffer.alloc(0);

function bit(value: number, field: string): 0 | 1 {
  if (value !== 0 && value !== 1) throw new ValidationError(field, `${value} is not 0 or 1`);
  return value;
}

/**
 * An open GPIO chip. Inputs are read with gpioget; each output is held by its own gpioset (so
 * setting one does not glitch the others); the lines with edge detection share one gpiomon.
 * Operations run one at a time, in order.
 */
export class GpioChipHandle implements DeviceHandle {
  readonly stream: ByteLessStream;
  private readonly lines = new Map<number, LineState>();
  private monitor: GpioMonitor | null = null;
  /** The offsets and bias the running gpiomon was started with. */
  private monitorKey = '';
  private listener: DeviceEventListener | null = null;
  private readonly abort = new AbortController();
  private queue: Promise<unknown> = Promise.resolve();
  private closing: Promise<void> | null = null;

  constructor(
    readonly path: string,
    private readonly tools: GpiodTools,
    private readonly onClosed: () => void,
  ) {
    this.stream = new ByteLessStream(`GPIO chip ${path}`);
  }

  onEvent(listener: DeviceEventListener): void {
    this.listener = listener;
  }

  async update(config: DeviceConfig): Promise<void> {
    const settings = parseGpioSettings(config.settings);
    await this.serial(() => this.apply(settings));
  }

  execute(command: DeviceCommand): Promise<CommandReply> {
    return this.serial(() => this.run(command));
  }

  configuration(): Promise<Record<string, string>> {
    return this.serial(async () => {
      const [chip] = await this.tools.info([this.path], this.abort.signal);
      await this.readInputs([...this.lines.values()].filter((l) => !l.holder && !this.watched(l)));
      const out: Record<string, string> = { lines: [...this.lines.values()].map((l) => l.plan.label).join(',') };
      for (const { plan, value } of this.lines.values()) {
        out[`direction.${plan.label}`] = chip.lines[plan.offset].direction;
        out[`value.${plan.label}`] = String(value);
        out[`edge.${plan.label}`] = plan.edge;
      }
      return out;
    });
  }

  close(): Promise<void> {
    return this.shutdown(null);
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    if (this.closing) return Promise.reject(new DeviceError(`${this.path} is closed`));
    const result = this.queue.then(fn);
    this.queue = result.catch(() => undefined);
    return result;
  }

  /** Brings the chip to `settings`, touching only what changed (gpiomon restarts only if its lines do). */
  private async apply(settings: GpioSettings): Promise<void> {
    const [chip] = await this.tools.info([this.path], this.abort.signal);
    const ours = new Set([...this.lines.values()].filter((l) => l.holder || this.watched(l)).map((l) => l.plan.offset));
    const plans = planGpioLines(settings, chip.lines, ours);
    const edged = plans.filter((p) => p.edge !== 'none');
    const monitorKey = edged.length > 0 ? `${edged.map((p) => p.offset).join(',')}|${edged[0].bias}` : '';
    if (this.monitor && monitorKey !== this.monitorKey) {
      await this.monitor.stop();
      this.monitor = null;
    }
    const planned = new Set(plans.map((p) => p.offset));
    for (const [offset, line] of this.lines) {
      if (planned.has(offset)) continue;
      await line.holder?.stop();
      this.lines.delete(offset);
    }
    for (const plan of plans) {
      const line = this.lines.get(plan.offset) ?? { plan, holder: null, value: plan.initial };
      const was = line.plan;
      line.plan = plan;
      this.lines.set(plan.offset, line);
      if (plan.direction === 'output') {
        if (!line.holder) await this.drive(line, plan.initial);
        else if (was.activeLow !== plan.activeLow || was.bias !== plan.bias) await this.drive(line, line.value);
      } else if (line.holder) {
        await line.holder.stop();
        line.holder = null;
      }
    }
    // gpioget makes the inputs inputs (with their flags) and gives edge-watched lines their start value.
    await this.readInputs([...this.lines.values()].filter((l) => !l.holder && !this.watched(l)));
    if (monitorKey !== '' && !this.monitor) {
      const monitor = await this.tools.monitor(this.path, edged.map((p) => p.offset), edged[0].bias, this.abort.signal);
      monitor.onEvent(
        (event) => this.onEdge(event),
        (err) => this.emitError(err.message),
      );
      monitor.onUnexpectedExit((err) => void this.shutdown(err));
      this.monitor = monitor;
      this.monitorKey = monitorKey;
    }
  }

  private watched(line: LineState): boolean {
    return this.monitor !== null && this.monitorKey !== '' && line.plan.edge !== 'none' && !line.holder;
  }

  /** (Re)starts the gpioset of an output line at `value`. */
  private async drive(line: LineState, value: 0 | 1): Promise<void> {
    await line.holder?.stop();
    line.holder = null;
    const holder = await this.tools.hold(this.path, line.plan.offset, value, line.plan, this.abort.signal);
    holder.onUnexpectedExit((err) => void this.shutdown(err));
    line.holder = holder;
    line.value = value;
  }

  /** One gpioget per set of request flags (-l and -B apply to every line of a call). */
  private async readInputs(lines: LineState[]): Promise<void> {
    const groups = new Map<string, LineState[]>();
    for (const l of lines) {
      const key = `${l.plan.activeLow}|${l.plan.bias}`;
      groups.set(key, [...(groups.get(key) ?? []), l]);
    }
    for (const group of groups.values()) {
      const values = await this.tools.get(this.path, group.map((l) => l.plan.offset), group[0].plan, this.abort.signal);
      group.forEach((l, i) => {
        l.value = values[i];
      });
    }
  }

  private line(target: string): LineState {
    for (const l of this.lines.values()) if (l.plan.label === target) return l;
    const byOffset = /^\d+$/.test(target) ? this.lines.get(Number(target)) : undefined;
    if (byOffset) return byOffset;
    throw new ValidationError('target', `no line "${target}" in this mapping (lines: ${[...this.lines.values()].map((l) => l.plan.label).join(', ')})`);
  }

  private async run(command: DeviceCommand): Promise<CommandReply> {
    switch (command.op) {
      case CommandOp.GpioGet: {
        const line = this.line(command.target);
        if (!line.holder && !this.watched(line)) await this.readInputs([line]);
        return { value: line.value, data: EMPTY };
      }
      case CommandOp.GpioSet: {
        const line = this.line(command.target);
        const value = bit(command.value, 'value');
        if (!line.holder) {
          const label = line.plan.label;
          throw new ValidationError('target', `line ${label} is an input: only an output can be set (direction.${label}=output, or GpioSetDirection first)`);
        }
        await this.drive(line, value);
        return { value, data: EMPTY };
      }
      case CommandOp.GpioSetDirection: {
        const line = this.line(command.target);
        const output = bit(command.value, 'value') === 1;
        if (output && line.plan.edge !== 'none') {
          throw new ValidationError('target', `line ${line.plan.label} watches ${line.plan.edge} edges (edge.${line.plan.label}), so it stays an input`);
        }
        if (output && !line.holder) await this.drive(line, line.plan.initial);
        if (!output && line.holder) {
          await line.holder.stop();
          line.holder = null;
          await this.readInputs([line]);
        }
        return { value: output ? 1 : 0, data: EMPTY };
      }
      default:
        throw new UnsupportedError(`a GPIO chip has no ${CommandOp[command.op] ?? `op ${command.op}`} command`);
    }
  }

  /** gpiomon watches both edges of every line it holds; each line's own edge setting filters here. */
  private onEdge(event: GpioEdgeEvent): void {
    const line = this.lines.get(event.offset);
    if (!line || !this.watched(line)) return;
    const value = (event.rising ? 1 : 0) ^ (line.plan.activeLow ? 1 : 0) ? 1 : 0;
    line.value = value;
    const edge = line.plan.edge;
    if (edge !== 'both' && (edge === 'rising') !== (value === 1)) return;
    this.emit({
      type: DeviceEventType.GpioEdge,
      timestampMs: eventTimestamp(),
      source: line.plan.label,
      value,
      data: Buffer.from(`${event.sec}.${String(event.nsec).padStart(9, '0')}`),
    });
  }

  private emit(event: DeviceEvent): void {
    this.listener?.(event);
  }

  private emitError(message: string): void {
    this.emit({ type: DeviceEventType.DeviceError, timestampMs: eventTimestamp(), source: '', value: 0, data: Buffer.from(message) });
  }

  /** Closes the device; with `err` (a tool died: the chip is gone or broken) it reports it first. */
  private shutdown(err: DeviceError | null): Promise<void> {
    if (this.closing) return this.closing;
    if (err) this.emitError(err.message);
    this.abort.abort();
    this.closing = (async () => {
      await this.queue;
      await Promise.all([this.monitor?.stop(), ...[...this.lines.values()].map((l) => l.holder?.stop())]);
      this.monitor = null;
      this.lines.clear();
      this.onClosed();
      this.stream.destroy(err ?? undefined);
    })();
    return this.closing;
  }
}
