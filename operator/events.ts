/**
 * Kubernetes Events for what the operator did or could not do, de-duplicated: the same event (object,
 * type, reason, message) is recorded once, not once per reconcile. Events are best effort: a failure to
 * record one is logged and never fails a reconcile.
 */
import type { CoreV1Api, CoreV1Event } from '@kubernetes/client-node';
import { errorMessage } from '../common/errors';
import { silentLogger, type Logger } from '../common/logger';
import { FIELD_MANAGER } from './desired-deployment';

export type EventType = 'Normal' | 'Warning';

export interface InvolvedObject {
  apiVersion: string;
  kind: string;
  name: string;
  namespace: string;
  uid: string;
}

export interface EventSink {
  create(namespace: string, event: CoreV1Event): Promise<void>;
}

/** An EventSink on client-node's CoreV1Api. */
export function coreEventSink(api: CoreV1Api): EventSink {
  return {
    async create(namespace, body) {
      await api.createNamespacedEvent({ namespace, body });
    },
  };
}

export interface EventRecorderOptions {
  sink: EventSink;
  /** reportingInstance: which replica recorded it. */
  instance: string;
  logger?: Logger;
  /** Distinct events remembered for de-duplication (oldest forgotten first). Default 10000. */
  maxRemembered?: number;
  now?: () => Date;
}

const MAX_MESSAGE = 1024;

export class EventRecorder {
  private readonly seen = new Map<string, true>();
  private readonly o: EventRecorderOptions;
  private readonly log: Logger;
  /** Events actually sent (not counting de-duplicated ones). */
  recorded = 0;

  constructor(options: EventRecorderOptions) {
    this.o = options;
    this.log = (options.logger ?? silentLogger).child({ part: 'events' });
  }

  /** Records the event unless the same one was already recorded for this object. Never throws. */
  async record(obj: InvolvedObject, type: EventType, reason: string, message: string): Promise<void> {
    const text = message.length > MAX_MESSAGE ? `${message.slice(0, MAX_MESSAGE - 1)}…` : message;
    const id = `${obj.uid}\u0000${type}\u0000${reason}\u0000${text}`;
    if (this.seen.has(id)) return;
    this.seen.set(id, true);
    const max = this.o.maxRemembered ?? 10_000;
    while (this.seen.size > max) this.seen.delete(this.seen.keys().next().value as string);
    const now = (this.o.now ?? (() => new Date()))();
    const event: CoreV1Event = {
      metadata: { generateName: `${obj.name}.`, namespace: obj.namespace },
      involvedObject: { apiVersion: obj.apiVersion, kind: obj.kind, name: obj.name, namespace: obj.namespace, uid: obj.uid },
      type,
      reason,
      message: text,
      source: { component: FIELD_MANAGER },
      reportingComponent: FIELD_MANAGER,
      reportingInstance: this.o.instance,
      firstTimestamp: now,
      lastTimestamp: now,
      count: 1,
    };
    try {
      await this.o.sink.create(obj.namespace, event);
      this.recorded++;
    } catch (err) {
      // Forget it, so that a later reconcile tries again.
      this.seen.delete(id);
      this.log.warn('recording an event failed', { reason, object: `${obj.namespace}/${obj.name}`, error: errorMessage(err) });
    }
  }

  /** Forgets every event of an object (it was deleted). */
  forget(uid: string): void {
    for (const id of this.seen.keys()) if (id.startsWith(`${uid}\u0000`)) this.seen.delete(id);
  }
}
