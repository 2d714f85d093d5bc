import type { Mapping, Policy } from '../../src/proto/types';
import { bindingLabels } from '../../src/telemetry/binding-labels';
import type { Counter, Stats } from '../../src/telemetry/stats';
import { RateMeter } from './rate-meter';
import { TokenBucket } from '../../src/limits/token-bucket';

/** How long after being held back or dropping a binding still counts as throttled in its load report. */
const THROTTLED_WINDOW_MS = 1000;

/** The bytes per second a mapping may move: the smaller of its policy's limit and its adaptive share; 0 = unlimited. */
export function byteRate(mapping: Mapping): number {
  const own = Number(mapping.policy?.bytesPerSecond ?? '0');
  const adaptive = Number(mapping.adaptiveLimit?.bytesPerSecond ?? '0');
  if (own === 0) return adaptive;
  return adaptive === 0 ? own : Math.min(own, adaptive);
}

/**
 * The rate limits and measured rates of one binding (mapping) on its device, shared by all the
 * binding's sessions: a token bucket for bytes sent to the device and one for commands, and what
 * to do above them (slow the sender down, or drop and count).
 */
export class BindingLimits {
  readonly bytes: TokenBucket;
  readonly commands: TokenBucket;
  /** Bytes the binding moved to and from the device. */
  readonly meter: RateMeter;
  readonly commandMeter: RateMeter;
  readonly droppedBytes: Counter;
  readonly droppedCommands: Counter;
  /** Commands the binding sent to the device (shared and time-slice sharing cut them from its bytes). */
  readonly commandsSent: Counter;
  /** Times the binding was slowed down or had data dropped by its rate limits. */
  private readonly throttledCount: Counter;
  drop = false;
  private throttledAt = Number.NEGATIVE_INFINITY;

  constructor(
    mapping: Mapping,
    stats: Stats,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.bytes = new TokenBucket(0, 0, now);
    this.commands = new TokenBucket(0, 0, now);
    this.meter = new RateMeter(1000, now);
    this.commandMeter = new RateMeter(1000, now);
    this.droppedBytes = stats.counter('rate_limit_dropped_bytes', { mapping: mapping.id });
    this.droppedCommands = stats.counter('rate_limit_dropped_commands', { mapping: mapping.id });
    this.commandsSent = stats.counter('binding_commands', bindingLabels(mapping));
    this.throttledCount = stats.counter('rate_limit_throttled', bindingLabels(mapping));
    this.retune(mapping);
  }

  /** Takes a new policy or adaptive limit, keeping the tokens already earned. */
  retune(mapping: Mapping): void {
    const policy: Policy | null = mapping.policy;
    const rate = byteRate(mapping);
    // A burst of 0 is the bucket's default (one second's worth of the rate).
    this.bytes.configure(rate, Number(policy?.burstBytes ?? '0'));
    this.commands.configure(policy?.commandsPerSecond ?? 0, policy?.burstCommands ?? 0);
    this.drop = policy?.overLimit === 'OVER_LIMIT_DROP';
  }

  get limited(): boolean {
    return this.bytes.ratePerSecond > 0 || this.commands.ratePerSecond > 0;
  }

  markThrottled(): void {
    this.throttledAt = this.now();
    this.throttledCount.add(1);
  }

  /** Held back or dropping within the last second: the binding wants more than it gets. */
  get throttled(): boolean {
    return this.now() - this.throttledAt < THROTTLED_WINDOW_MS;
  }
}
