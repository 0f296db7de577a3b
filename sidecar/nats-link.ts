/**
 * The sidecar's NATS connection as the call path sees it: `links.current` is the connection calls go on; a
 * credentials handover (common/nats-creds-reload.ts) replaces it, and drains the previous link's connection
 * only once it owes no reply and waits for no answer (both counters at zero).
 */
import type { NatsConnection } from '@nats-io/nats-core';

export interface NatsLink {
  readonly nc: NatsConnection;
  /** Calls of the call API sent on `nc` that wait for their reply. */
  outbound: number;
  /** Calls received on `nc` whose reply has not been handed to it yet. */
  owed: number;
}

export interface NatsLinks {
  current: NatsLink;
}

export function natsLink(nc: NatsConnection): NatsLink {
  return { nc, outbound: 0, owed: 0 };
}
