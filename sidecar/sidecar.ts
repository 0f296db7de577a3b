/**
 * Wiring: ops endpoints, NATS connection, function health, the call subscription (made once the function
 * first answers its health check), micro discovery, the localhost call API, and a graceful stop.
 *
 * Shutdown has two steps that share one implementation: drain() (readiness off, subscription drained, in-flight
 * calls finish, bounded by FNMESH_DRAIN_TIMEOUT_MS; the process and the call API stay up) and stop() =
 * drain() + close. In Kubernetes the function container's preStop hook calls GET /drain on the ops port, so
 * the sidecar stops taking calls before the function gets SIGTERM; the sidecar's own SIGTERM comes after
 * the function has exited and only closes.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { NatsConnection, Subscription } from '@nats-io/nats-core';
import {
  connectNats,
  createRegistry,
  errorMessage,
  inboxPrefix,
  replicaIdentity,
  serviceCallWildcard,
  serviceQueueGroup,
  type Logger,
  type Readiness,
} from './common';
import { createCallApiServer } from './call-api';
import { createCallHandler } from './call-handler';
import { InFlight } from './concurrency';
import { createOpsHandler, type DrainResult } from './ops';
export type { DrainResult } from './ops';
import type { SidecarConfig } from './config';
import { FunctionClient } from './function-client';
import { InboundCalls } from './inbound';
import { SidecarMetrics } from './metrics';
import { CallStats, MicroDiscovery } from './micro';

export interface Sidecar {
  opsPort: number;
  callPort: number;
  readiness(): Readiness;
  /**
   * Readiness false, the call subscription drained (the broker sends no new calls), in-flight calls finish
   * (bounded by FNMESH_DRAIN_TIMEOUT_MS); the NATS connection, the call API and the ops server stay up.
   * Idempotent: every call returns the same drain.
   */
  drain(): Promise<DrainResult>;
  /** drain() (the same one, if it already ran), then close the call API, NATS and the ops server. */
  stop(): Promise<void>;
}

export interface SidecarDeps {
  logger: Logger;
}

const HEALTH_FAST_MS = 50;
const HEALTH_SLOW_MS = 1_000;
const HEALTH_TIMEOUT_MS = 1_000;

function listen(server: http.Server, host: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve((server.address() as AddressInfo).port);
    });
  });
}

/** Resolves with the promise, or after `ms` (so a stop never hangs, e.g. on a NATS drain while disconnected). */
async function bounded(p: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), ms)));
  try {
    return await Promise.race([p.then(() => true), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

function closeServer(server: http.Server): Promise<void> {
  return new Promise((resolve) => {
    if (!server.listening) return resolve();
    server.close(() => resolve());
    server.closeIdleConnections();
  });
}

export async function startSidecar(config: SidecarConfig, deps: SidecarDeps): Promise<Sidecar> {
  const log = deps.logger;
  const registry = createRegistry('sidecar');
  const metrics = new SidecarMetrics(registry);
  const inFlight = new InFlight(config.concurrency);
  const inbound = new InboundCalls();
  const stats = new CallStats(config.functions);
  const client = new FunctionClient(config.functionPort, { connections: config.concurrency });

  let draining = false;
  let natsConnected = false;
  let functionHealthy = false;
  let healthReason = `the function has not answered GET ${config.healthPath} on ${client.address} yet`;
  let nc: NatsConnection | undefined;
  let callSub: Subscription | undefined;

  const readiness = (): Readiness => {
    if (draining) return { ready: false, reason: 'the sidecar is draining: it takes no new calls' };
    if (!natsConnected) return { ready: false, reason: 'not connected to NATS' };
    if (!functionHealthy) return { ready: false, reason: healthReason };
    return { ready: true };
  };

  // Set once the NATS connection and the call subscription exist; before that, a drain has nothing to drain.
  let drainImpl: (() => Promise<DrainResult>) | undefined = undefined;
  let drained: Promise<DrainResult> | undefined;
  const drain = (): Promise<DrainResult> => {
    if (!drained) {
      draining = true;
      drained = drainImpl ? drainImpl() : Promise.resolve({ status: 'drained', inFlight: 0 });
    }
    return drained;
  };

  // Ops first, so liveness answers while NATS or the function are still coming up.
  const opsServer = http.createServer(createOpsHandler({ registry, readiness, drain, logger: log }));
  const opsPort = await listen(opsServer, config.opsListen.host, config.opsListen.port);

  try {
    nc = await connectNats({
      servers: config.natsServers,
      name: `sidecar ${config.namespace}/${config.service} ${config.replicaId}`,
      token: config.natsToken,
      user: config.natsUser,
      pass: config.natsPassword,
      ...config.natsClient,
      inboxPrefix: inboxPrefix(replicaIdentity(config.namespace, config.service)),
      logger: log,
    });
  } catch (err) {
    await closeServer(opsServer);
    await client.close();
    throw err;
  }
  const conn = nc;
  natsConnected = true;
  metrics.natsConnected.set(1);
  void (async () => {
    for await (const s of conn.status()) {
      if (s.type === 'disconnect') natsConnected = false;
      else if (s.type === 'reconnect') natsConnected = true;
      metrics.natsConnected.set(natsConnected && !conn.isClosed() ? 1 : 0);
    }
  })().catch(() => undefined);
  conn.closed().then(
    () => {
      natsConnected = false;
      metrics.natsConnected.set(0);
    },
    () => undefined,
  );

  const micro = new MicroDiscovery(
    { namespace: config.namespace, service: config.service, replicaId: config.replicaId, functions: config.functions },
    stats,
  );
  if (!draining) micro.start(conn, log);

  const callApi = createCallApiServer({
    nc: conn,
    namespace: config.namespace,
    service: config.service,
    defaultTimeoutMs: config.timeoutMs,
    inbound,
    metrics,
    logger: log,
  });
  let callPort: number;
  try {
    callPort = await listen(callApi, config.callListen.host, config.callListen.port);
  } catch (err) {
    micro.stop();
    await conn.close();
    await closeServer(opsServer);
    await client.close();
    throw err;
  }

  const handler = createCallHandler({
    nc: conn,
    namespace: config.namespace,
    service: config.service,
    defaultTimeoutMs: config.timeoutMs,
    client,
    inFlight,
    inbound,
    metrics,
    stats,
    logger: log,
  });

  const subscribe = (): void => {
    if (callSub || draining) return;
    callSub = conn.subscribe(serviceCallWildcard(config.namespace, config.service), {
      queue: serviceQueueGroup(config.namespace, config.service),
      callback: handler,
    });
    log.info('function is up; taking calls', {
      subject: serviceCallWildcard(config.namespace, config.service),
      queue: serviceQueueGroup(config.namespace, config.service),
    });
  };

  // Health: every 50 ms until the first success, then every second.
  let healthTimer: NodeJS.Timeout | undefined;
  const checkHealth = async (): Promise<void> => {
    const wasHealthy = functionHealthy;
    try {
      const { status } = await client.health(config.healthPath, HEALTH_TIMEOUT_MS);
      if (status < 500) {
        functionHealthy = true;
      } else {
        functionHealthy = false;
        healthReason = `the function answered GET ${config.healthPath} with status ${status}`;
      }
    } catch (err) {
      functionHealthy = false;
      const e = err as { code?: string };
      healthReason = `the function does not answer GET ${config.healthPath} on ${client.address}: ${e.code ?? errorMessage(err)}`;
    }
    metrics.functionHealthy.set(functionHealthy ? 1 : 0);
    if (functionHealthy) subscribe();
    if (wasHealthy !== functionHealthy && callSub) {
      if (functionHealthy) log.info('function is healthy again');
      else log.warn('function is not healthy', { reason: healthReason });
    }
  };
  const scheduleHealth = (): void => {
    if (draining) return;
    healthTimer = setTimeout(
      () => {
        void checkHealth().finally(scheduleHealth);
      },
      callSub ? HEALTH_SLOW_MS : HEALTH_FAST_MS,
    );
  };
  void checkHealth().finally(scheduleHealth);

  log.info('sidecar started', {
    opsPort,
    callPort,
    functionPort: config.functionPort,
    concurrency: config.concurrency,
  });

  drainImpl = async (): Promise<DrainResult> => {
    draining = true;
    if (healthTimer) clearTimeout(healthTimer);
    log.info('draining calls', { inFlight: inFlight.size, drainTimeoutMs: config.drainTimeoutMs });
    micro.stop();
    const started = Date.now();
    if (callSub) {
      try {
        if (!(await bounded(callSub.drain(), config.drainTimeoutMs))) callSub.unsubscribe();
      } catch (err) {
        log.warn('draining the call subscription failed', { error: errorMessage(err) });
      }
    }
    const idle = await inFlight.idle(Math.max(0, config.drainTimeoutMs - (Date.now() - started)));
    const tookMs = Date.now() - started;
    if (!idle) {
      log.warn('drain timeout passed with calls still running', {
        inFlight: inFlight.size,
        drainTimeoutMs: config.drainTimeoutMs,
        tookMs,
      });
      return { status: 'timeout', inFlight: inFlight.size };
    }
    log.info('drained: no calls in flight', { tookMs });
    return { status: 'drained', inFlight: 0 };
  };

  let stopped: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopped ??= (async () => {
      log.info('stopping', { alreadyDraining: drained !== undefined });
      await drain();
      micro.stop(); // again: a drain asked for while the sidecar was starting ran before discovery started
      // Calls left over at the drain's bound may have finished since (a preStop drain can run long before SIGTERM).
      const idle = inFlight.size === 0;
      if (!(await bounded(closeServer(callApi), idle ? 1_000 : 0))) callApi.closeAllConnections();
      try {
        if (!conn.isClosed() && !(await bounded(conn.drain(), 5_000))) await conn.close();
      } catch (err) {
        log.warn('draining the NATS connection failed', { error: errorMessage(err) });
        await conn.close().catch(() => undefined);
      }
      await closeServer(opsServer);
      await client.close(!idle).catch(() => undefined);
      log.info('stopped');
    })();
    return stopped;
  };

  return { opsPort, callPort, readiness, drain, stop };
}
