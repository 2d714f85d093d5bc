import { type Span, SpanKind, SpanStatusCode } from '@opentelemetry/api';
import { DeviceMeshError, errorMessage, UnavailableError } from '../src/errors';
import { DEFAULT_POLICY } from '../src/model/policy-defaults';
import type { Mapping, Policy } from '../src/proto/types';
import type { ConsumerSession } from '../src/socket-plane/consumer-session';
import type { Session } from '../src/socket-plane/session';
import { bindingLabels } from '../src/telemetry/binding-labels';
import type { Labels, Stats } from '../src/telemetry/stats';
import { meshTracer, traceparentOf } from '../src/telemetry/trace-context';
import type { ListenerContext } from './listener';
import { type RoamingLimits, RoamingSession } from './roaming-session';

/** Byte counts of one app connection (running totals) as far as the stats already have them. */
export class ByteReport {
  private reportedIn = 0;
  private reportedOut = 0;

  constructor(
    private readonly stats: Stats,
    private readonly labels: Labels,
  ) {}

  /** Adds to the stats what the totals grew by since the last report. */
  report(bytesIn: number, bytesOut: number): void {
    if (bytesIn > this.reportedIn) this.stats.add('bytes_app_to_device', bytesIn - this.reportedIn, this.labels);
    if (bytesOut > this.reportedOut) this.stats.add('bytes_device_to_app', bytesOut - this.reportedOut, this.labels);
    this.reportedIn = bytesIn;
    this.reportedOut = bytesOut;
  }

  /** The totals start again from 0 (a new pty). */
  restart(): void {
    this.reportedIn = 0;
    this.reportedOut = 0;
  }
}

/**
 * The sessions of one virtual device's app connections: the span each starts, the OPEN to the
 * agent its mapping leads to, the count and log of a refusal, and for a roaming mapping the
 * RoamingSession that holds the app across a move, told when the mapping changes.
 */
export class AppSessions {
  private readonly roaming = new Set<RoamingSession>();
  private withdrawn = false;

  constructor(
    private readonly ctx: ListenerContext,
    /** The listener's mapping now. */
    private readonly mapping: () => Mapping,
  ) {}

  /** App connections held for their moving device now. */
  get holding(): number {
    let n = 0;
    for (const r of this.roaming) if (r.holding) n++;
    return n;
  }

  /** One span per app connection: the agent's command spans continue its trace (traceparent in the OPEN). */
  span(name: string, mapping: Mapping): Span {
    return meshTracer().startSpan(name, {
      kind: SpanKind.SERVER,
      attributes: { 'devicemesh.binding': mapping.binding, 'devicemesh.mapping': mapping.id, 'devicemesh.workload': this.ctx.workloadId },
    });
  }

  /** Opens the session of one app connection on `mapping`; rejects with the agent's refusal. */
  async open(mapping: Mapping, span?: Span): Promise<ConsumerSession> {
    const traceparent = span ? traceparentOf(span) : undefined;
    const session = await this.openOn(mapping, traceparent);
    if (!mapping.roaming) return session;
    const roaming = new RoamingSession(
      session,
      mapping,
      { current: () => (this.withdrawn ? undefined : this.mapping()), open: (m) => this.openOn(m, traceparent) },
      {
        ...roamingLimits(mapping.policy),
        stats: this.ctx.stats,
        log: this.ctx.log,
        ...(this.ctx.moves ? { moves: this.ctx.moves } : {}),
      },
    );
    this.roaming.add(roaming);
    roaming.once('close', () => this.roaming.delete(roaming));
    return roaming;
  }

  /** An OPEN that failed: counted by reason and logged; the error as the app should hear it. */
  refused(err: unknown, mapping: Mapping, span: Span | undefined, outcome: string): DeviceMeshError {
    const failure = err instanceof DeviceMeshError ? err : new UnavailableError(errorMessage(err));
    span?.setStatus({ code: SpanStatusCode.ERROR, message: failure.message });
    this.ctx.stats.add('app_connections_refused', 1, { reason: failure.code });
    this.ctx.log.warn({ ...bindingLabels(mapping), agent: mapping.agentAddress, code: failure.code, error: failure.message }, `session refused; ${outcome}`);
    return failure;
  }

  /** The mapping changed, or came back after a withdrawal: held apps try where it leads now. */
  changed(): void {
    this.withdrawn = false;
    const limits = roamingLimits(this.mapping().policy);
    for (const r of this.roaming) r.mappingChanged(limits);
  }

  /** The mapping was withdrawn (its device is on no gateway): held apps wait for it to come back. */
  withdraw(): void {
    this.withdrawn = true;
  }

  private openOn(mapping: Mapping, traceparent: string | undefined): Promise<Session> {
    const { pool, workloadId } = this.ctx;
    try {
      return pool.connection(mapping.agentAddress, mapping.hostId).openSession({ mappingId: mapping.id, workloadId, ...(traceparent ? { traceparent } : {}) });
    } catch (err) {
      return Promise.reject(err);
    }
  }
}

function roamingLimits(policy: Policy | null): RoamingLimits {
  return { holdMs: policy?.roamingHoldMs || DEFAULT_POLICY.roamingHoldMs, depth: policy?.queueDepth || DEFAULT_POLICY.queueDepth };
}
