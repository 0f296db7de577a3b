/**
 * NATS connections with the options a long-running mesh process needs: never give up reconnecting, start
 * even if the broker is not up yet, notice a dead server quickly, and log every status change.
 */
import { connect } from '@nats-io/transport-node';
import type { NatsConnection } from '@nats-io/nats-core';
import type { Logger } from './logger';

export interface NatsOptions {
  servers: string[];
  name: string;
  token?: string;
  user?: string;
  pass?: string;
  logger: Logger;
}

export async function connectNats(options: NatsOptions): Promise<NatsConnection> {
  const nc = await connect({
    servers: options.servers,
    name: options.name,
    token: options.token,
    user: options.user,
    pass: options.pass,
    maxReconnectAttempts: -1,
    waitOnFirstConnect: true,
    reconnectTimeWait: 250,
    reconnectJitter: 100,
    timeout: 5_000,
    pingInterval: 5_000,
    maxPingOut: 2,
    ignoreClusterUpdates: false,
    // otherwise nats.js captures an Error (an async stack) for every request and subscription
    noAsyncTraces: true,
  });
  const log = options.logger.child({ nats: options.name });
  log.info('connected to NATS', { server: nc.getServer() });
  void (async () => {
    for await (const s of nc.status()) {
      switch (s.type) {
        case 'disconnect':
          log.warn('disconnected from NATS; reconnecting', { server: s.server });
          break;
        case 'reconnect':
          log.info('reconnected to NATS', { server: s.server });
          break;
        case 'error':
          log.error('NATS error', { error: String(s.error) });
          break;
        default:
          break;
      }
    }
  })().catch(() => undefined);
  return nc;
}
