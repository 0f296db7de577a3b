/**
 * Kubernetes Events for what the operator did or could not do, de-duplicated: the same event (object,
 * type, reason, message) is recorded once, not once per reconcile. Events are best effort and never slow
 * a reconcile down: `record` queues the event and returns at once (its promise settles when the event is
 * sent or dropped); at most `maxInFlight` are sent at a time so that a burst of Events does not take the
 * API connections the reconciles' writes need, and past `maxBacklog` waiting ones the oldest is dropped
 * (logged). A failure to send one is logged and forgotten, so a later reconcile records it again.
 */
import type { CoreV1Event } from '@kubernetes/client-node';
import { errorMessage } from '../common/errors';
import type { KubeClient } from '../common/kube-client';
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

/** An EventSink on the plain-JSON client (keep-alive connections). */
export function jsonEventSink(client: KubeClient): EventSink {
  return {
    async create(namespace, body) {
      await client.request('POST', `/api/v1/namespaces/${encodeURIComponent(namespace)}/events`, { body });
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
  /** Events being sent at once (default 4). */
  maxInFlight?: number;
  /** Events waiting to be sent before the oldest is dropped (default 1000). */
  maxBacklog?: number;
  now?: () => Date;
}

const MAX_MESSAGE = 1024;

interface Pending {
  id: string;
  namespace: string;
  event: CoreV1Event;
  done: () => void;
}

export class EventRecorder {
  /** Event id → the object's uid, oldest first; and each object's event ids (for forget). */
  private readonly seen = new Map<string, string>();
  private readonly byUid = new Map<string, Set<string>>();
  private readonly o: EventRecorderOptions;
  private readonly log: Logger;
  private readonly backlog: Pending[] = [];
  private inFlight = 0;
  /** Events actually sent (not counting de-duplicated ones). */
  recorded = 0;
  /** Events dropped because the backlog was full. */
  dropped = 0;

  constructor(options: EventRecorderOptions) {
    this.o = options;
    this.log = (options.logger ?? silentLogger).child({ part: 'events' });
  }

  /** Events waiting or being sent. */
  pending(): number {
    return this.backlog.length + this.inFlight;
  }

  /**
   * Queues the event unless the same one was already recorded for this object. Never throws; the promise
   * settles once the event is sent, failed or dropped (callers need not wait for it).
   */
  record(obj: InvolvedObject, type: EventType, reason: string, message: string): Promise<void> {
    const text = message.length > MAX_MESSAGE ? `${message.slice(0, MAX_MESSAGE - 1)}…` : message;
    const id = `${obj.uid}\u0000${type}\u0000${reason}\u0000${text}`;
    if (this.seen.has(id)) return Promise.resolve();
    this.remember(id, obj.uid);
    const now = (this.o.now ?? (() => new Date()))();
    const event: CoreV1Event = {
      metadata: { generateName: `${obj.name}.`, namespace: obj.namespace },
      involvedObject: {
        apiVersion: obj.apiVersion,
        kind: obj.kind,
        name: obj.name,
        namespace: obj.namespace,
        uid: obj.uid,
      },
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
    return new Promise<void>((done) => {
      this.backlog.push({ id, namespace: obj.namespace, event, done });
      if (this.backlog.length > (this.o.maxBacklog ?? 1000)) {
        const oldest = this.backlog.shift()!;
        this.unremember(oldest.id);
        this.dropped++;
        this.log.warn('too many events waiting; dropped the oldest', {
          reason: oldest.event.reason,
          object: `${oldest.namespace}/${oldest.event.involvedObject.name}`,
        });
        oldest.done();
      }
      this.pump();
    });
  }

  private pump(): void {
    while (this.inFlight < (this.o.maxInFlight ?? 4) && this.backlog.length > 0) {
      const item = this.backlog.shift()!;
      this.inFlight++;
      void this.send(item).finally(() => {
        this.inFlight--;
        item.done();
        this.pump();
      });
    }
  }

  private async send(item: Pending): Promise<void> {
    const { event } = item;
    try {
      await this.o.sink.create(item.namespace, event);
      this.recorded++;
    } catch (err) {
      // Forget it, so that a later reconcile tries again.
      this.unremember(item.id);
      this.log.warn('recording an event failed', {
        reason: event.reason,
        object: `${item.namespace}/${event.involvedObject.name}`,
        error: errorMessage(err),
      });
    }
  }

  /** Forgets every event of an object (it was deleted). */
  forget(uid: string): void {
    for (const id of this.byUid.get(uid) ?? []) this.seen.delete(id);
    this.byUid.delete(uid);
  }

  /** Event ids remembered for de-duplication. */
  remembered(): number {
    return this.seen.size;
  }

  private remember(id: string, uid: string): void {
    this.seen.set(id, uid);
    let ids = this.byUid.get(uid);
    if (!ids) this.byUid.set(uid, (ids = new Set()));
    ids.add(id);
    const max = this.o.maxRemembered ?? 10_000;
    while (this.seen.size > max) this.unremember(this.seen.keys().next().value as string);
  }

  private unremember(id: string): void {
    const uid = this.seen.get(id);
    if (uid === undefined) return;
    this.seen.delete(id);
    const ids = this.byUid.get(uid);
    ids?.delete(id);
    if (ids && ids.size === 0) this.byUid.delete(uid);
  }
}
