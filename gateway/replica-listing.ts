/**
 * The replicas in the gateway's listing (`GET /v1/services`): each service's replicas as they report
 * themselves over NATS micro discovery (common/replica-states.ts), so an operator sees which replica is out of
 * rotation and why (function-down, unhealthy, ejected, overloaded, draining) next to the service's circuit
 * breakers. Asked when the listing is read, all services at once: a listing takes at most one PING window.
 */
import type { PeerState, PingWindow } from '../common/replica-states';

/** How long the listing gathers PING answers: 50 ms after the last one, at most 500 ms (a service with none). */
export const LISTING_PING_WINDOW: PingWindow = { stallMs: 50, maxWaitMs: 500 };

/** The replicas' states of `namespace/service`. */
export type ReplicaStates = (namespace: string, service: string) => Promise<PeerState[]>;

export interface ReplicaListing {
  replicas: PeerState[];
  /** Set when the replicas could not be asked (NATS down): the list is then empty, not "no replicas". */
  replicasUnknown?: string;
}

/** Each service of the listing with its replicas' states; a failed PING says why instead of listing none. */
export async function withReplicaStates<T extends { namespace: string; name: string }>(
  services: readonly T[],
  states: ReplicaStates,
): Promise<Array<T & ReplicaListing>> {
  return Promise.all(
    services.map(async (s) => {
      try {
        return { ...s, replicas: await states(s.namespace, s.name) };
      } catch (err) {
        const reason = err instanceof Error ? err.message : String(err);
        return { ...s, replicas: [], replicasUnknown: `the replicas could not be asked over NATS: ${reason}` };
      }
    }),
  );
}
