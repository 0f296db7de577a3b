/**
 * What each identity may publish and subscribe to: pure functions of the identity, in nats-server's own
 * terms (allow lists, queue-restricted entries `"subject queue"`, allow_responses). Anything not listed is
 * refused by the server with a Permissions Violation, so a function's pod holding its replica's credentials
 * can neither call another service directly, nor speak as another service, nor read anyone else's traffic.
 */
import {
  CALL_PREFIX,
  GATEWAY_QUEUE_GROUP,
  INTERNAL_WILDCARD,
  internalPublishPermission,
  serviceCallWildcard,
  serviceQueueGroup,
} from '../protocol';
import { MICRO_API_PREFIX, MICRO_VERBS, microServiceName, microSubjects } from '../micro-names';
import { inboxPrefix, type MeshIdentity } from './identity';

export interface NatsPermissions {
  publish: string[];
  /** Entries are subjects, or `"subject queue"`: that subject only in that queue group. */
  subscribe: string[];
  /**
   * allow_responses: the identity may publish to the reply subject of a message it received, at most `max`
   * times within `ttlMs` of receiving it. Undefined: it may not reply at all.
   */
  responses?: { max: number; ttlMs: number };
}

/**
 * How long a received request may be answered. It bounds the longest call: nats-server refuses a reply sent
 * later (its own default is 2 minutes). Ten minutes covers any timeout the gateway accepts by default.
 */
export const DEFAULT_RESPONSE_TTL_MS = 10 * 60_000;

export interface PermissionOptions {
  /** How long after a request its reply may be sent; at least the longest call the identity answers. */
  responseTtlMs?: number;
}

/** A subscribe entry restricted to one queue group (nats-server's queue permission syntax). */
export function queueEntry(subject: string, queue: string): string {
  return `${subject} ${queue}`;
}

/** Every subject the identity's inbox covers. */
export function inboxWildcard(identity: MeshIdentity): string {
  return `${inboxPrefix(identity)}.>`;
}

/** The discovery subjects every replica of `namespace/service` answers (any replica id). */
export function replicaMicroSubjects(namespace: string, service: string): string[] {
  const name = microServiceName(namespace, service);
  return MICRO_VERBS.flatMap((verb) => {
    const [all, byName] = microSubjects(verb, name, '*');
    return [all!, byName!, `${byName!}.*`];
  });
}

/** The one discovery subject a replica may publish: the PING of its own service (all its replicas answer). */
export function replicaPeersPing(namespace: string, service: string): string {
  return microSubjects('PING', microServiceName(namespace, service), '')[1]!;
}

/** The discovery PING of any one service by name (`$SRV.PING.{name}`): what the gateway's listing asks. */
export function servicesPing(): string {
  return microSubjects('PING', '*', '')[1]!;
}

export function permissionsFor(identity: MeshIdentity, options: PermissionOptions = {}): NatsPermissions {
  const responses = { max: 1, ttlMs: options.responseTtlMs ?? DEFAULT_RESPONSE_TTL_MS };
  switch (identity.kind) {
    case 'replica': {
      const { namespace, service } = identity;
      return {
        publish: [
          // its own internal-call subjects: the gateway reads the caller from the subject
          internalPublishPermission(namespace, service),
          // its own service's discovery PING: before outlier detection ejects it, it asks the other replicas
          // for their state (maxEjectionPercent); no other service's, and no INFO or STATS
          replicaPeersPing(namespace, service),
        ],
        subscribe: [
          queueEntry(serviceCallWildcard(namespace, service), serviceQueueGroup(namespace, service)),
          inboxWildcard(identity),
          ...replicaMicroSubjects(namespace, service),
        ],
        // answers to calls and to discovery requests
        responses,
      };
    }
    case 'gateway':
      return {
        // calls; and every service's discovery PING (the listing shows each replica's state), no INFO or STATS
        publish: [`${CALL_PREFIX}.>`, servicesPing()],
        subscribe: [queueEntry(INTERNAL_WILDCARD, GATEWAY_QUEUE_GROUP), inboxWildcard(identity)],
        // answers to internal calls
        responses,
      };
    case 'observer':
      return { publish: [`${MICRO_API_PREFIX}.>`], subscribe: [inboxWildcard(identity)] };
  }
}
