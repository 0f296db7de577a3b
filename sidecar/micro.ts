/**
 * NATS micro discovery (ADR-32, the protocol of nats.go `micro` and nats.js `@nats-io/services`): the
 * replica answers PING, INFO and STATS on `$SRV.{verb}`, `$SRV.{verb}.{name}` and `$SRV.{verb}.{name}.{id}`
 * (no queue group: every replica answers), so `nats micro ls` and service clients see fnmesh services.
 */
import type { NatsConnection, Subscription } from '@nats-io/nats-core';
import {
  callSubject,
  errorMessage,
  microServiceName,
  microSubjects,
  serviceQueueGroup,
  STATE_METADATA_KEY,
  type FnmeshError,
  type Logger,
} from './common';

export { MICRO_API_PREFIX, microServiceName, microSubjects } from './common';
export const MICRO_TYPES = {
  ping: 'io.nats.micro.v1.ping_response',
  info: 'io.nats.micro.v1.info_response',
  stats: 'io.nats.micro.v1.stats_response',
} as const;
/** The version the sidecar reports (semver, as micro requires); keep in step with package.json. */
export const SIDECAR_VERSION = '0.1.0';

interface EndpointCounters {
  numRequests: number;
  numErrors: number;
  lastError: string;
  /** Total processing time, milliseconds (fractional). */
  processingMs: number;
}

/** Per-function call counters in the micro STATS shape. */
export class CallStats {
  private readonly byFunction = new Map<string, EndpointCounters>();
  private static readonly MAX_ENTRIES = 500;

  constructor(declared: readonly string[]) {
    for (const fn of declared)
      this.byFunction.set(fn, { numRequests: 0, numErrors: 0, lastError: '', processingMs: 0 });
  }

  record(fn: string, ms: number, error?: FnmeshError): void {
    let c = this.byFunction.get(fn);
    if (!c) {
      if (this.byFunction.size >= CallStats.MAX_ENTRIES) return;
      c = { numRequests: 0, numErrors: 0, lastError: '', processingMs: 0 };
      this.byFunction.set(fn, c);
    }
    c.numRequests++;
    c.processingMs += ms;
    if (error) {
      c.numErrors++;
      c.lastError = `${error.status}:${error.message}`;
    }
  }

  entries(): Array<[string, EndpointCounters]> {
    return [...this.byFunction.entries()];
  }
}

export interface MicroIdentity {
  namespace: string;
  service: string;
  replicaId: string;
  functions: readonly string[];
}

export interface MicroEndpointInfo {
  name: string;
  subject: string;
  queue_group: string;
  metadata: Record<string, string>;
}

export interface MicroEndpointStats {
  name: string;
  subject: string;
  queue_group: string;
  num_requests: number;
  num_errors: number;
  last_error: string;
  processing_time: number;
  average_processing_time: number;
}

export class MicroDiscovery {
  readonly name: string;
  readonly id: string;
  private readonly started = new Date();
  private readonly metadata: Record<string, string>;
  private subs: Subscription[] = [];

  constructor(
    private readonly identity: MicroIdentity,
    private readonly stats: CallStats,
    /** The replica's state now (serving, function-down, unhealthy, ejected, overloaded, draining, ...). */
    private readonly state: () => string = () => 'serving',
  ) {
    this.name = microServiceName(identity.namespace, identity.service);
    this.id = identity.replicaId;
    this.metadata = { namespace: identity.namespace, service: identity.service, replica: identity.replicaId };
  }

  private base(type: string): {
    name: string;
    id: string;
    version: string;
    metadata: Record<string, string>;
    type: string;
  } {
    const metadata = { ...this.metadata, [STATE_METADATA_KEY]: this.state() };
    return { name: this.name, id: this.id, version: SIDECAR_VERSION, metadata, type };
  }

  ping(): Record<string, unknown> {
    return this.base(MICRO_TYPES.ping);
  }

  info(): Record<string, unknown> {
    const { namespace, service } = this.identity;
    const endpoints: MicroEndpointInfo[] = this.identity.functions.map((fn) => ({
      name: fn,
      subject: callSubject(namespace, service, fn),
      queue_group: serviceQueueGroup(namespace, service),
      metadata: { namespace, service, function: fn },
    }));
    return {
      ...this.base(MICRO_TYPES.info),
      description: `fnmesh service ${namespace}/${service} (replica ${this.id})`,
      endpoints,
    };
  }

  statsResponse(): Record<string, unknown> {
    const { namespace, service } = this.identity;
    const endpoints: MicroEndpointStats[] = this.stats.entries().map(([fn, c]) => {
      const processing = Math.round(c.processingMs * 1e6);
      return {
        name: fn,
        subject: callSubject(namespace, service, fn),
        queue_group: serviceQueueGroup(namespace, service),
        num_requests: c.numRequests,
        num_errors: c.numErrors,
        last_error: c.lastError,
        processing_time: processing,
        average_processing_time: c.numRequests > 0 ? Math.round(processing / c.numRequests) : 0,
      };
    });
    return { ...this.base(MICRO_TYPES.stats), started: this.started.toISOString(), endpoints };
  }

  /** Subscribes the nine discovery subjects. */
  start(nc: NatsConnection, logger: Logger): void {
    const verbs: Array<['PING' | 'INFO' | 'STATS', () => Record<string, unknown>]> = [
      ['PING', () => this.ping()],
      ['INFO', () => this.info()],
      ['STATS', () => this.statsResponse()],
    ];
    const encoder = new TextEncoder();
    for (const [verb, answer] of verbs) {
      for (const subject of microSubjects(verb, this.name, this.id)) {
        this.subs.push(
          nc.subscribe(subject, {
            callback: (err, msg) => {
              if (err) {
                logger.warn('micro discovery subscription failed', { subject, error: errorMessage(err) });
                return;
              }
              if (!msg.reply) return;
              try {
                msg.respond(encoder.encode(JSON.stringify(answer())));
              } catch (e) {
                logger.warn('could not answer a micro discovery request', { subject, error: errorMessage(e) });
              }
            },
          }),
        );
      }
    }
  }

  stop(): void {
    for (const s of this.subs) s.unsubscribe();
    this.subs = [];
  }

  /** Answers on `next` from now on (a credentials handover); the old connection's subscriptions are ended. */
  move(next: NatsConnection, logger: Logger): void {
    if (this.subs.length === 0) return; // not started, or stopped
    const old = this.subs;
    this.subs = [];
    this.start(next, logger);
    for (const s of old) s.unsubscribe();
  }
}
