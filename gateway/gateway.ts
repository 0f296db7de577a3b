/**
 * Wiring: NATS (external or the embedded broker), the rule source → registry, the HTTP server, internal
 * calls, ops endpoints, and the graceful stop. `startGateway(config, deps)` → Gateway.
 */
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import type { NatsConnection, Subscription } from '@nats-io/nats-core';
import { connectNats, errorMessage, type FunctionService, type Logger, type Readiness } from '../common';
import type { RuleSource } from '../common/manifest-source';
import { loadBrokerSecurity, startBroker, type Broker } from '../broker';
import { GATEWAY_IDENTITY, inboxPrefix } from '../common/nats-identity/identity';
import { registerCredsExpiryMetric, reloadCredsOnChange } from '../common/nats-creds-reload';
import { createJwtVerifier } from './auth';
import { loadDelegationTokens } from './delegation';
import { GATEWAY_SETTINGS } from './settings';
import type { GatewayConfig, ListenAddress } from './config';
import { createGuardedServer } from './front-door';
import { createHttpHandler, createOpsHandler } from './http-server';
import { subscribeInternalCalls } from './internal-calls';
import { NotConnectedError, requestsInFlight, type Connection } from './invoke';
import { createGatewayMetrics } from './metrics';
import { CircuitBreakers } from './circuit-breaker';
import { EMPTY_REGISTRY, breakerKeys, buildRegistry, gatewayDefaultCompiler, type Registry } from './registry';
import { DEFAULT_MAX_BODY_BYTES, effectiveBodyLimit, embeddedMaxPayload, headerBudget } from './limits';
import { LISTING_PING_WINDOW, type ReplicaStates } from './replica-listing';
import { pingServiceReplicas } from '../common/replica-states';

/** Replies to the gateway's calls arrive below it; its NATS permissions let it receive replies nowhere else. */
const GATEWAY_INBOX_PREFIX = inboxPrefix(GATEWAY_IDENTITY);

export interface GatewayDeps {
  logger: Logger;
  ruleSource: RuleSource;
}

export interface Gateway {
  /** http://host:port of the call API. */
  url: string;
  port: number;
  /** The NATS URL the gateway uses (the embedded broker's when it runs one). */
  natsUrl: string;
  /** The ops listener's URL (FNMESH_OPS_LISTEN): /metrics, /v1/services, /healthz, /readyz. */
  opsUrl: string;
  readiness(): Readiness;
  /** The current routing table. */
  registry(): Registry;
  stop(): Promise<void>;
}

async function listen(server: http.Server, addr: ListenAddress): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    const onError = (err: Error): void => reject(err);
    server.once('error', onError);
    server.listen(addr.port, addr.host, () => {
      server.off('error', onError);
      resolve();
    });
  });
  return (server.address() as AddressInfo).port;
}

function urlOf(host: string, port: number): string {
  const h = host === '0.0.0.0' || host === '::' || host === '' ? '127.0.0.1' : host.includes(':') ? `[${host}]` : host;
  return `http://${h}:${port}`;
}

/**
 * How long a stopping gateway leaves its idle keep-alive connections open. Every response of a stopping
 * gateway says `connection: close` (http-server.ts), so a client busy on a connection leaves it after its
 * answer; closing an idle one at once would race a client that is sending its next request on it right then
 * (its call fails with the socket closed under it, no answer). A busy client uses each of its connections
 * well within this; one idle for longer is closed after it.
 */
export const IDLE_LINGER_MS = 1_000;

async function closeServer(server: http.Server, inFlight: () => number, timeoutMs: number): Promise<void> {
  // net.Server's close: stop accepting, but not http.Server's, which also closes the idle connections at once
  const closed = new Promise<void>((resolve) => net.Server.prototype.close.call(server, () => resolve()));
  const deadline = Date.now() + timeoutMs;
  const lingerUntil = Date.now() + Math.min(IDLE_LINGER_MS, timeoutMs);
  while (Date.now() < lingerUntil) {
    const open = await new Promise<number>((r) => server.getConnections((_e, n) => r(n ?? 0)));
    if (open === 0) break;
    await new Promise((r) => setTimeout(r, 20));
  }
  server.closeIdleConnections();
  while (inFlight() > 0 && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 20));
    server.closeIdleConnections();
  }
  server.closeAllConnections();
  await closed;
}

/** A NATS connection and what the call path needs of it: whether it is up, and a promise that rejects when it drops. */
interface ConnectionLink {
  nc: NatsConnection;
  connected: boolean;
  lost: { promise: Promise<never>; reject: (err: Error) => void };
  /** While disconnected: since when (performance.now()), and a promise resolved on reconnect. */
  down: { since: number; reconnected: Promise<void>; resolve: () => void } | undefined;
}

function newLost(): ConnectionLink['lost'] {
  let reject!: (err: Error) => void;
  const promise = new Promise<never>((_, r) => (reject = r));
  promise.catch(() => undefined);
  return { promise, reject };
}

function trackConnection(nc: NatsConnection): ConnectionLink {
  const link: ConnectionLink = { nc, connected: true, lost: newLost(), down: undefined };
  const up = (): void => {
    link.connected = true;
    const down = link.down;
    link.down = undefined;
    down?.resolve();
  };
  void (async () => {
    for await (const s of nc.status()) {
      if (s.type === 'disconnect' || s.type === 'staleConnection') {
        if (link.connected) {
          link.connected = false;
          let resolve!: () => void;
          const reconnected = new Promise<void>((r) => (resolve = r));
          link.down = { since: performance.now(), reconnected, resolve };
          const old = link.lost;
          link.lost = newLost();
          old.reject(new NotConnectedError());
        }
      } else if (s.type === 'reconnect') {
        up();
      }
    }
  })()
    .catch(() => undefined)
    // closed: nothing waits for a reconnect that cannot come
    .finally(() => link.down?.resolve());
  return link;
}

export async function startGateway(config: GatewayConfig, deps: GatewayDeps): Promise<Gateway> {
  const logger = deps.logger;
  // Fail fast on a default rule that does not compile (func targets etc.).
  gatewayDefaultCompiler(config.defaultRule)('default');
  const delegation = loadDelegationTokens(config.delegationKeyFile, GATEWAY_SETTINGS.delegationKeyFile.env);
  const verifier = await createJwtVerifier(config.jwt);
  // The functions' circuit breakers outlive routing-table rebuilds (an unchanged service keeps its state).
  const breakers = new CircuitBreakers();
  const metrics = createGatewayMetrics(undefined, breakers);

  let broker: Broker | undefined;
  let nc: NatsConnection | undefined;
  let httpServer: http.Server | undefined;
  let opsServer: http.Server | undefined;
  let subscription: Subscription | undefined;
  let sourceStarted = false;
  const cleanup = async (): Promise<void> => {
    await Promise.allSettled([
      sourceStarted ? deps.ruleSource.stop() : Promise.resolve(),
      httpServer ? new Promise((r) => httpServer!.close(r)) : Promise.resolve(),
      opsServer ? new Promise((r) => opsServer!.close(r)) : Promise.resolve(),
    ]);
    verifier.close();
    if (nc) await nc.close().catch(() => undefined);
    if (broker) await broker.close().catch(() => undefined);
  };

  try {
    let natsUrl: string;
    let servers: string[];
    if (config.natsServers) {
      servers = config.natsServers;
      natsUrl = servers.join(',');
    } else {
      broker = await startBroker({
        host: config.broker.host,
        port: config.broker.port,
        ...(config.natsToken ? { token: config.natsToken } : {}),
        // sized to carry the largest body the gateway accepts, with the headers of a call
        maxPayload: embeddedMaxPayload(config),
        // JWT auth (operator mode) and TLS from their files, read now: a bad file stops the gateway at start
        ...(config.brokerSecurity ? loadBrokerSecurity(config.brokerSecurity) : {}),
        logger: logger.child({ part: 'broker' }),
      });
      natsUrl = broker.url;
      servers = [broker.url];
      logger.info('embedded NATS broker started', {
        url: broker.url,
        auth: config.brokerSecurity?.operator ? 'jwt' : config.natsToken ? 'token' : false,
        tls: Boolean(config.brokerSecurity?.tlsCert),
      });
    }
    const natsOptions = {
      servers,
      name: 'fnmesh-gateway',
      ...(config.natsToken ? { token: config.natsToken } : {}),
      ...config.natsClient,
      inboxPrefix: GATEWAY_INBOX_PREFIX,
      logger,
    };
    nc = await connectNats(natsOptions);
    const first = nc;
    // What the gateway accepts, the transport carries: the body limit must fit the server's max payload.
    const maxPayload = first.info?.max_payload ?? DEFAULT_MAX_BODY_BYTES;
    const maxBodyBytes = effectiveBodyLimit(maxPayload, config);
    logger.info('request limits', {
      maxBodyBytes,
      maxParamsDepth: config.maxParamsDepth,
      maxTokenBytes: config.maxTokenBytes,
      natsMaxPayload: maxPayload,
      headerBudget: headerBudget(config.maxTokenBytes),
    });
    if (config.maxBodyBytes === undefined && maxBodyBytes < DEFAULT_MAX_BODY_BYTES)
      logger.warn(
        `FNMESH_MAX_BODY_BYTES is lowered to ${maxBodyBytes} to fit the NATS server's max_payload of ${maxPayload} bytes with the headers of a call; raise max_payload to accept ${DEFAULT_MAX_BODY_BYTES}`,
      );
    // The connection calls go on; a credentials handover (reloadCredsOnChange) replaces it with another.
    let link = trackConnection(first);
    const connection: Connection = {
      inboxPrefix: GATEWAY_INBOX_PREFIX,
      get nc() {
        return link.nc;
      },
      connected: () => link.connected && !link.nc.isClosed(),
      lost: () => link.lost.promise,
      disconnect: () => link.down,
    };
    registerCredsExpiryMetric(metrics.registry, () => link.nc);
    const replicaStates: ReplicaStates = (namespace, service) =>
      pingServiceReplicas(link.nc, namespace, service, LISTING_PING_WINDOW);

    // Rules.
    let registry: Registry = EMPTY_REGISTRY;
    let sourceLoaded = false;
    const onServices = (services: FunctionService[]): void => {
      const built = buildRegistry(services, config.defaultRule, registry);
      for (const e of built.errors) {
        metrics.ruleErrors.inc();
        logger.error('a FunctionService has rules that do not compile', { service: e.service, error: e.message });
      }
      registry = built.registry;
      breakers.retain(breakerKeys(registry));
      sourceLoaded = true;
      logger.info('routing table updated', { services: registry.services.size, errors: built.errors.length });
    };
    await deps.ruleSource.start(onServices);
    sourceStarted = true;

    let stopping = false;
    const readiness = (): Readiness => {
      if (stopping) return { ready: false, reason: 'the gateway is stopping' };
      if (!connection.connected()) return { ready: false, reason: 'not connected to NATS' };
      if (!sourceLoaded) return { ready: false, reason: 'the rules are not loaded yet' };
      return { ready: true };
    };
    const ops = { registry: metrics.registry, readiness };

    const internalDeps = {
      conn: connection,
      breakers,
      registry: () => registry,
      delegation,
      metrics,
      logger,
      maxTimeoutMs: config.maxTimeoutMs,
      exposeRuleReasons: config.exposeRuleReasons,
      maxBodyBytes,
      maxParamsDepth: config.maxParamsDepth,
    };
    let internal = subscribeInternalCalls(first, internalDeps);
    subscription = internal.subscription;
    const credsFile = config.natsClient?.credsFile;
    const reloader = credsFile
      ? reloadCredsOnChange({
          file: credsFile,
          logger,
          current: () => link.nc,
          connect: () => connectNats({ ...natsOptions, failFirstConnect: true }),
          move: async (next, previous) => {
            const old = internal;
            // new calls (HTTP, internal, func rules) go on `next` from here; internal calls arrive on both
            link = trackConnection(next);
            nc = next;
            internal = subscribeInternalCalls(next, internalDeps);
            subscription = internal.subscription;
            await old.subscription.drain().catch(() => undefined);
            // the calls that came in on `previous` are answered on it, the requests sent on it get their replies
            const deadline = Date.now() + config.maxTimeoutMs + 1_000;
            while ((old.inFlight() > 0 || requestsInFlight(previous) > 0) && Date.now() < deadline)
              await new Promise((r) => setTimeout(r, 20));
          },
        })
      : undefined;

    const { handler, inFlight } = createHttpHandler({
      config: { ...config, maxBodyBytes },
      registry: () => registry,
      conn: connection,
      breakers,
      replicaStates,
      verifier,
      delegation,
      metrics,
      logger,
      ops,
      stopping: () => stopping,
    });
    const guard = { limits: config.front, metrics, logger };
    httpServer = createGuardedServer(handler, { ...guard, listener: 'call', capConnections: true });
    const port = await listen(httpServer, config.listen);
    const url = urlOf(config.listen.host, port);
    opsServer = createGuardedServer(
      createOpsHandler({ registry: () => registry, breakers, replicaStates, logger, ops }),
      {
        ...guard,
        listener: 'ops',
        capConnections: false,
      },
    );
    const opsUrl = urlOf(config.opsListen.host, await listen(opsServer, config.opsListen));
    for (const [which, s] of [
      ['call', httpServer],
      ['ops', opsServer],
    ] as const) {
      // After listen, an error is one of accepting a connection (EMFILE: out of file descriptors).
      s.on('error', (err: NodeJS.ErrnoException) =>
        logger.error('the gateway could not accept a connection', {
          listener: which,
          error: err.message,
          hint: 'raise the file limit (ulimit -n) or lower FNMESH_MAX_CONNECTIONS',
        }),
      );
    }
    logger.info('gateway listening', { url, opsUrl, nats: natsUrl, embeddedBroker: broker !== undefined });

    let stopPromise: Promise<void> | undefined;
    const server = httpServer;
    const stop = (): Promise<void> =>
      (stopPromise ??= (async () => {
        stopping = true;
        logger.info('gateway stopping: finishing in-flight calls', { inFlight: inFlight() + internal.inFlight() });
        await reloader?.stop();
        await closeServer(server, inFlight, config.shutdownTimeoutMs);
        await subscription?.drain().catch(() => undefined);
        const deadline = Date.now() + config.shutdownTimeoutMs;
        while (internal.inFlight() > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
        await deps.ruleSource
          .stop()
          .catch((err: unknown) => logger.warn('rule source did not stop cleanly', { error: errorMessage(err) }));
        verifier.close();
        const last = link.nc;
        await last.drain().catch(() => last.close());
        if (opsServer) {
          const o = opsServer;
          await new Promise((r) => {
            o.close(r);
            o.closeAllConnections();
          });
        }
        if (broker) await broker.close();
        logger.info('gateway stopped');
      })());

    return { url, port, natsUrl, opsUrl, readiness, registry: () => registry, stop };
  } catch (err) {
    await cleanup();
    throw err;
  }
}
