/**
 * What each replica of a service says of itself, read over NATS micro discovery: every replica answers a
 * PING on `$SRV.PING.{name}` with its id and its state in the metadata (`fnmesh.state`: serving, starting,
 * or why it is out of the queue group — function-down, unhealthy, ejected, overloaded, draining). The sidecar
 * asks its peers before outlier detection ejects it (maxEjectionPercent); the gateway asks for its listing.
 * Here, in common/, because both read what the sidecar writes.
 */
import type { NatsConnection } from '@nats-io/nats-core';
import { microServiceName, microSubjects } from './micro-names';

/** The metadata key of a replica's state in its PING, INFO and STATS answers (a ReplicaState, or "ejecting"). */
export const STATE_METADATA_KEY = 'fnmesh.state';

/** One replica's answer to a micro PING: its id and its `fnmesh.state`. */
export interface PeerState {
  id: string;
  state: string;
}

/** How long a PING gathers answers: until none came for `stallMs`, at most `maxWaitMs`. */
export interface PingWindow {
  stallMs: number;
  maxWaitMs: number;
}

/** The states in micro PING answers (JSON), sorted by replica id; answers that are not micro's are skipped. Pure. */
export function peerStates(answers: Iterable<Uint8Array>): PeerState[] {
  const decoder = new TextDecoder();
  const byId = new Map<string, string>();
  for (const data of answers) {
    try {
      const a = JSON.parse(decoder.decode(data)) as { id?: unknown; metadata?: Record<string, unknown> };
      const state = a.metadata?.[STATE_METADATA_KEY];
      if (typeof a.id === 'string' && a.id) byId.set(a.id, typeof state === 'string' ? state : 'serving');
    } catch {
      // not a micro answer: skipped
    }
  }
  return [...byId].sort(([a], [b]) => a.localeCompare(b)).map(([id, state]) => ({ id, state }));
}

/** The PING subject every replica of the micro service `name` answers. */
export function servicePingSubject(name: string): string {
  return microSubjects('PING', name, '')[1]!;
}

/** Asks every replica of the micro service `name` for its state (a requester's own answer included). */
export async function pingReplicas(nc: NatsConnection, name: string, window: PingWindow): Promise<PeerState[]> {
  const answers = await nc.requestMany(servicePingSubject(name), undefined, {
    strategy: 'stall',
    stall: window.stallMs,
    maxWait: window.maxWaitMs,
  });
  const data: Uint8Array[] = [];
  for await (const m of answers) data.push(m.data);
  return peerStates(data);
}

/** The states of the replicas of `namespace/service`. */
export function pingServiceReplicas(
  nc: NatsConnection,
  namespace: string,
  service: string,
  window: PingWindow,
): Promise<PeerState[]> {
  return pingReplicas(nc, microServiceName(namespace, service), window);
}
