/**
 * NATS connections with the options a long-running mesh process needs: never give up reconnecting, start
 * even if the broker is not up yet, notice a dead server quickly, and log every status change. Who the
 * process is: its `.creds` file (read again on every reconnect; nats-creds-reload.ts takes up a rotated one
 * without waiting for a reconnect), its TLS files, and its own inbox prefix
 * (its NATS permissions let it receive replies nowhere else).
 */
import { accessSync, constants as fsConstants, statSync } from 'node:fs';
import { connect } from '@nats-io/transport-node';
import type { NatsConnection } from '@nats-io/nats-core';
import { ConfigError } from './errors';
import type { Logger } from './logger';
import { credsFileAuthenticator, type CredsFileAuthenticator } from './nats-creds-authenticator';
import type { ParsedCreds } from './nats-identity/creds-format';
import { NATS_CLIENT_ENV, type NatsClientCredentials, type NatsTlsFiles } from './nats-client-settings';

export interface NatsOptions extends NatsClientCredentials {
  servers: string[];
  name: string;
  token?: string;
  user?: string;
  pass?: string;
  /** Where replies to this process's requests arrive (nats-identity's `inboxPrefix(identity)`). */
  inboxPrefix?: string;
  /**
   * The first connect fails at once instead of waiting for the server (a second connection, made while the
   * first one works, e.g. a credentials handover: a refusal must come back, not be retried for ever).
   */
  failFirstConnect?: boolean;
  logger: Logger;
}

const credsOf = new WeakMap<NatsConnection, CredsFileAuthenticator>();

/** The credentials a connection made by connectNats logged in with last (undefined: no .creds file). */
export function natsCredsInUse(nc: NatsConnection): ParsedCreds | undefined {
  return credsOf.get(nc)?.current();
}

/** Stops at start on a TLS file that is not there or not readable (nats.js would only fail on connecting). */
function checkTlsFiles(tls: NatsTlsFiles): void {
  const files: Array<[string | undefined, string]> = [
    [tls.caFile, NATS_CLIENT_ENV.tlsCa],
    [tls.certFile, NATS_CLIENT_ENV.tlsCert],
    [tls.keyFile, NATS_CLIENT_ENV.tlsKey],
  ];
  for (const [file, env] of files) {
    if (!file) continue;
    try {
      accessSync(file, fsConstants.R_OK);
      if (!statSync(file).isFile()) throw new Error('it is not a file');
    } catch (err) {
      throw new ConfigError(
        `the TLS file ${file} (${env}) cannot be read (${(err as Error).message}): point ${env} at a readable PEM file`,
      );
    }
  }
}

export async function connectNats(options: NatsOptions): Promise<NatsConnection> {
  const log = options.logger.child({ nats: options.name });
  if (options.tls) checkTlsFiles(options.tls);
  const creds = options.credsFile ? credsFileAuthenticator(options.credsFile, log) : undefined;
  const nc = await connect({
    servers: options.servers,
    name: options.name,
    token: options.token,
    user: options.user,
    pass: options.pass,
    ...(creds ? { authenticator: creds.authenticator } : {}),
    // nats.js reads these files on every connect, so renewed certificates are picked up on reconnect
    ...(options.tls ? { tls: { ...options.tls } } : {}),
    ...(options.inboxPrefix ? { inboxPrefix: options.inboxPrefix } : {}),
    maxReconnectAttempts: -1,
    // keep reconnecting after the server refuses the credentials (expired, revoked): the creds file is read
    // again on each attempt, so rotated credentials get the process back in without a restart
    ignoreAuthErrorAbort: true,
    waitOnFirstConnect: !options.failFirstConnect,
    reconnectTimeWait: 250,
    reconnectJitter: 100,
    timeout: 5_000,
    pingInterval: 5_000,
    maxPingOut: 2,
    ignoreClusterUpdates: false,
    // otherwise nats.js captures an Error (an async stack) for every request and subscription
    noAsyncTraces: true,
  });
  if (creds) credsOf.set(nc, creds);
  log.info('connected to NATS', {
    server: nc.getServer(),
    ...(creds ? { user: creds.current().publicKey } : {}),
  });
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
