/**
 * Wiring: ops endpoints, NATS connection, function health, the call subscription, micro discovery, the
 * localhost call API, and a graceful stop.
 *
 * The call subscription (the service's queue group) exists only while the replica can run calls
 * (membership.ts decides): it is made once the function first answers its health check, drained the moment
 * the function is down (a call could not reach it, or a health check failed), the queue is full, or outlier
 * detection ejects the replica, and made again when that is over (health checked every 50 ms meanwhile).
 * A drained subscription still delivers the messages already on their way (nats.js sends UNSUB, then waits
 * for the server's PONG before dropping the subscription): those are answered "not executed", never dropped.
 *
 * Shutdown has two steps that share one implementation: drain() (readiness off, subscription drained, in-flight
 * calls finish, bounded by FNMESH_DRAIN_TIMEOUT_MS; the process and the call API stay up) and stop() =
 * drain() + close. In Kubernetes the function container's preStop hook calls GET /drain on the ops port, so
 * the sidecar stops taking calls before the function gets SIGTERM; the sidecar's own SIGTERM comes after
 * the function has exited and only closes.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Msg, NatsConnection, Subscription } from '@nats-io/nats-core';
import {
  connectNats,
  createRegistry,
  errorMessage,
  inboxPrefix,
  registerCredsExpiryMetric,
  pingReplicas,
  reloadCredsOnChange,
  replicaIdentity,
  serviceCallWildcard,
  serviceQueueGroup,
  type Logger,
  type NotExecutedReason,
  type Readiness,
} from './common';
import { createCallApiServer } from './call-api';
import { createCallHandler } from './call-handler';
import { classifyConnectionError } from './call-outcome';
import { CallSlots } from './concurrency';
import { HEALTH_FAST_MS, Membership } from './membership';
import { OutlierDetector, ejectionAllowed } from './outlier';
import { createOpsHandler, type DrainResult } from './ops';
export type { DrainResult } from './ops';
import type { SidecarConfig } from './config';
import { FunctionClient } from './function-client';
import { InboundCalls } from './inbound';
import { SidecarMetrics } from './metrics';
import { CallStats, MicroDiscovery } from './micro';
import { natsLink, type NatsLink, type NatsLinks } from './nats-link';
import { IdleGc } from './idle-gc';

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

const HEALTH_TIMEOUT_MS = 1_000;
/** Health checks that time out in a row before a serving replica leaves (a refused connection leaves at once). */
const HEALTH_TIMEOUTS_TO_LEAVE = 2;
/** Asking the service's replicas for their state before an ejection: answers until none came for 50 ms, ≤ 250 ms. */
const PEERS_STALL_MS = 50;
const PEERS_MAX_WAIT_MS = 250;

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
  const inbound = new InboundCalls();
  const stats = new CallStats(config.functions);
  const client = new FunctionClient(config.functionPort, { connections: config.concurrency });
  const membership = new Membership(`the function has not answered GET ${config.healthPath} on ${client.address} yet`);
  const outlier = new OutlierDetector(config.outlierDetection, performance.now());
  const outlierOn = outlier.enabled;
  /** True while this replica asks the others whether it may be ejected (reported as "ejecting"). */
  let deciding = false;
  let sync: () => void = () => undefined;
  const slots = new CallSlots(config.concurrency, config.queueLength, {
    onFull: (full) => {
      membership.setOverloaded(full);
      sync();
    },
    onQueued: (n) => metrics.queued.set(n),
  });

  let natsConnected = false;
  let nc: NatsConnection | undefined;
  let callSub: Subscription | undefined;
  /** Subscriptions left and still draining (their messages in flight are still answered). */
  const leaving = new Map<Subscription, Promise<void>>();

  const readiness = (): Readiness => {
    if (membership.state() === 'draining') return membership.readiness();
    if (!natsConnected) return { ready: false, reason: 'not connected to NATS' };
    return membership.readiness();
  };

  // Set once the NATS connection and the call subscription exist; before that, a drain has nothing to drain.
  let drainImpl: (() => Promise<DrainResult>) | undefined = undefined;
  let drained: Promise<DrainResult> | undefined;
  const drain = (): Promise<DrainResult> => {
    if (!drained) {
      membership.drain();
      drained = drainImpl ? drainImpl() : Promise.resolve({ status: 'drained', inFlight: 0 });
    }
    return drained;
  };

  // Ops first, so liveness answers while NATS or the function are still coming up.
  const opsServer = http.createServer(createOpsHandler({ registry, readiness, drain, logger: log }));
  const opsPort = await listen(opsServer, config.opsListen.host, config.opsListen.port);

  const natsOptions = {
    servers: config.natsServers,
    name: `sidecar ${config.namespace}/${config.service} ${config.replicaId}`,
    token: config.natsToken,
    user: config.natsUser,
    pass: config.natsPassword,
    ...config.natsClient,
    inboxPrefix: inboxPrefix(replicaIdentity(config.namespace, config.service)),
    logger: log,
  };
  try {
    nc = await connectNats(natsOptions);
  } catch (err) {
    await closeServer(opsServer);
    await client.close();
    throw err;
  }
  // The connection calls go on; a credentials handover (reloadCredsOnChange) replaces it with another.
  const nats: NatsLinks = { current: natsLink(nc) };
  natsConnected = true;
  metrics.natsConnected.set(1);
  registerCredsExpiryMetric(registry, () => nats.current.nc);
  const trackStatus = (c: NatsConnection): void => {
    const isCurrent = (): boolean => nats.current.nc === c;
    void (async () => {
      for await (const s of c.status()) {
        if (!isCurrent()) continue;
        if (s.type === 'disconnect') natsConnected = false;
        else if (s.type === 'reconnect') natsConnected = true;
        metrics.natsConnected.set(natsConnected && !c.isClosed() ? 1 : 0);
      }
    })().catch(() => undefined);
    c.closed().then(
      () => {
        if (!isCurrent()) return;
        natsConnected = false;
        metrics.natsConnected.set(0);
      },
      () => undefined,
    );
  };
  trackStatus(nc);

  const micro = new MicroDiscovery(
    { namespace: config.namespace, service: config.service, replicaId: config.replicaId, functions: config.functions },
    stats,
    () => (deciding ? 'ejecting' : membership.state()),
  );
  if (membership.state() !== 'draining') micro.start(nats.current.nc, log);

  const callApi = createCallApiServer({
    nats,
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
    await nats.current.nc.close();
    await closeServer(opsServer);
    await client.close();
    throw err;
  }

  const subject = serviceCallWildcard(config.namespace, config.service);
  const queue = serviceQueueGroup(config.namespace, config.service);

  // full collections once calls stop (NATS calls and the call API's requests): idle-gc.ts
  const idleGc = new IdleGc({
    idleMs: config.idleGcMs,
    busy: () => slots.size > 0 || inbound.size > 0,
    onCollected: (tookMs) =>
      log.debug('quiet: compacted the heap', { tookMs: Math.round(tookMs), rssBytes: process.memoryUsage.rss() }),
  });
  callApi.on('request', () => idleGc.touch());
  /** A subscription's callback: `h` is the handler of the connection it is on (see handlerFor). */
  const counted =
    (h: (err: Error | null, msg: Msg) => void) =>
    (err: Error | null, msg: Msg): void => {
      idleGc.touch();
      h(err, msg);
    };

  const subscribe = (): void => {
    if (callSub) return;
    callSub = nats.current.nc.subscribe(subject, { queue, callback: counted(handler) });
    metrics.takingCalls.set(1);
    log.info('taking calls', { subject, queue });
  };
  /** Drains the call subscription: its UNSUB is written to the socket now, before any reply queued after this. */
  const leave = (reason: NotExecutedReason): void => {
    const sub = callSub;
    if (!sub) return;
    callSub = undefined;
    metrics.takingCalls.set(0);
    metrics.leaves.labels(reason).inc();
    const r = membership.readiness();
    const why =
      reason === 'overloaded' ? 'every concurrency slot and the whole queue are taken' : r.ready ? reason : r.reason;
    (reason === 'draining' || reason === 'overloaded' ? log.info : log.warn).call(log, 'left the queue group', {
      reason,
      why,
    });
    let done: Promise<void>;
    try {
      done = sub.drain().catch(() => undefined);
    } catch {
      done = Promise.resolve();
    }
    leaving.set(sub, done);
    void done.finally(() => leaving.delete(sub));
  };
  sync = (): void => {
    // the waiting calls cannot run here now: another replica may take them
    if (membership.refusing !== undefined && slots.queued > 0) slots.refuseWaiting();
    if (membership.joined) subscribe();
    else if (membership.out !== undefined) leave(membership.out);
  };

  // Health: every 50 ms while the replica is out (or starting), every second while it serves.
  let healthTimer: NodeJS.Timeout | undefined;
  let checking = false;
  /** Bumped when a call finds the function down: a health check begun before that proves nothing. */
  let failureEpoch = 0;
  let healthTimeoutsInARow = 0;
  let checkAgainAtOnce = false;
  const checkHealth = async (): Promise<void> => {
    const epoch = failureEpoch;
    checkAgainAtOnce = false;
    const wasEjected = membership.ejected;
    let up = false;
    try {
      const { status } = await client.health(config.healthPath, HEALTH_TIMEOUT_MS);
      if (status < 500) up = true;
      else
        membership.functionFailed('unhealthy', `the function answered GET ${config.healthPath} with status ${status}`);
    } catch (err) {
      const e = err as { code?: string };
      const down = classifyConnectionError(err).executed === false;
      // One slow answer is not enough to leave: a stalled event loop (here or in the function) fires the
      // check's timer before the answer that is already there is read. Two in a row are.
      if (!down && e.code === 'ETIMEDOUT' && membership.joined && ++healthTimeoutsInARow < HEALTH_TIMEOUTS_TO_LEAVE) {
        log.debug('the health check timed out once; checking again at once', { timeoutMs: HEALTH_TIMEOUT_MS });
        checkAgainAtOnce = true;
      } else {
        membership.functionFailed(
          down ? 'down' : 'unhealthy',
          `the function does not answer GET ${config.healthPath} on ${client.address}: ${e.code ?? errorMessage(err)}`,
        );
      }
    }
    if (up || !checkAgainAtOnce) healthTimeoutsInARow = 0;
    if (up && epoch === failureEpoch) membership.healthPassed(performance.now());
    metrics.functionHealthy.set(membership.functionHealth === 'up' ? 1 : 0);
    if (wasEjected && !membership.ejected) {
      outlier.returned(performance.now());
      log.info('the ejection is over and the function is healthy: rejoining');
    }
    sync();
  };
  const scheduleHealth = (delayMs?: number): void => {
    clearTimeout(healthTimer);
    const next = delayMs ?? membership.nextHealthCheckMs(performance.now());
    if (next === undefined) return;
    healthTimer = setTimeout(() => {
      checking = true;
      void checkHealth().finally(() => {
        checking = false;
        scheduleHealth(checkAgainAtOnce ? HEALTH_FAST_MS : undefined);
      });
    }, next);
  };
  /** Something went wrong between checks: check soon (every 50 ms) instead of in a second. */
  const checkSoon = (): void => {
    if (!checking) scheduleHealth(HEALTH_FAST_MS);
  };

  const decideEjection = async (): Promise<void> => {
    deciding = true;
    const pct = config.outlierDetection.maxEjectionPercent;
    let allowed = pct >= 100;
    if (!allowed && pct > 0) {
      try {
        const peers = await pingReplicas(nats.current.nc, micro.name, {
          stallMs: PEERS_STALL_MS,
          maxWaitMs: PEERS_MAX_WAIT_MS,
        });
        allowed = ejectionAllowed(config.replicaId, peers, pct);
      } catch (err) {
        log.warn('could not ask the replicas for their state; not ejecting', { error: errorMessage(err) });
      }
    }
    deciding = false;
    const now = performance.now();
    if (membership.state() === 'draining') return;
    if (!allowed) {
      outlier.refused(now, Math.random() * 500);
      log.warn(
        'the function keeps failing, but ejecting this replica would take more than maxEjectionPercent of the service out',
        {
          maxEjectionPercent: pct,
        },
      );
      return;
    }
    const ms = outlier.eject(now);
    membership.eject(now, ms);
    metrics.ejections.inc();
    log.warn('outlier detection ejected this replica: its function keeps failing', { ejectionMs: Math.round(ms) });
    sync();
    scheduleHealth();
  };

  /** One handler per connection: it counts the replies that connection is owed (a handover waits for them). */
  const handlerFor = (link: NatsLink): ((err: Error | null, msg: Msg) => void) =>
    createCallHandler({
      link,
      namespace: config.namespace,
      service: config.service,
      replicaId: config.replicaId,
      defaultTimeoutMs: config.timeoutMs,
      client,
      slots,
      membership,
      inbound,
      metrics,
      stats,
      logger: log,
      onFunctionDown: (detail) => {
        failureEpoch++;
        if (membership.functionHealth !== 'down') {
          membership.functionFailed('down', detail);
          metrics.functionHealthy.set(0);
          sync();
        }
        checkSoon();
      },
      onAnswer: (failed) => {
        if (!outlierOn) return;
        const out = membership.out;
        if (out === 'ejected' || out === 'draining') return;
        if (outlier.record(failed, performance.now())) void decideEjection();
      },
    });
  let handler = handlerFor(nats.current);

  checking = true;
  void checkHealth().finally(() => {
    checking = false;
    scheduleHealth();
  });

  log.info('sidecar started', {
    opsPort,
    callPort,
    functionPort: config.functionPort,
    concurrency: config.concurrency,
    queueLength: config.queueLength,
  });

  const credsFile = config.natsClient?.credsFile;
  const reloader = credsFile
    ? reloadCredsOnChange({
        file: credsFile,
        logger: log,
        current: () => nats.current.nc,
        connect: () => connectNats({ ...natsOptions, failFirstConnect: true }),
        move: async (next) => {
          const old = nats.current;
          // calls (and rejoins of the queue group) and the call API's requests go on `next` from here
          nats.current = natsLink(next);
          handler = handlerFor(nats.current);
          natsConnected = true;
          metrics.natsConnected.set(1);
          trackStatus(next);
          // a member of the queue group on `next` before the one on `previous` leaves: no gap in taking calls
          const oldSub = callSub;
          if (oldSub) {
            callSub = next.subscribe(subject, { queue, callback: counted(handler) });
            if (!(await bounded(oldSub.drain(), config.drainTimeoutMs))) oldSub.unsubscribe();
          }
          micro.move(next, log);
          // the calls that came in on `previous` (also on a subscription that left before) reply on it, and
          // the call API's requests on it get their answers
          const deadline = Date.now() + config.drainTimeoutMs;
          while ((old.owed > 0 || old.outbound > 0) && Date.now() < deadline)
            await new Promise((r) => setTimeout(r, 20));
        },
      })
    : undefined;

  drainImpl = async (): Promise<DrainResult> => {
    await reloader?.stop();
    membership.drain();
    clearTimeout(healthTimer);
    log.info('draining calls', { inFlight: slots.size, drainTimeoutMs: config.drainTimeoutMs });
    micro.stop();
    const started = Date.now();
    sync(); // leaves the queue group; the calls waiting in the queue still run
    if (leaving.size > 0) {
      try {
        if (!(await bounded(Promise.all(leaving.values()), config.drainTimeoutMs)))
          for (const sub of leaving.keys()) sub.unsubscribe();
      } catch (err) {
        log.warn('draining the call subscription failed', { error: errorMessage(err) });
      }
    }
    const idle = await slots.idle(Math.max(0, config.drainTimeoutMs - (Date.now() - started)));
    const tookMs = Date.now() - started;
    if (!idle) {
      log.warn('drain timeout passed with calls still running', {
        inFlight: slots.size,
        drainTimeoutMs: config.drainTimeoutMs,
        tookMs,
      });
      return { status: 'timeout', inFlight: slots.size };
    }
    log.info('drained: no calls in flight', { tookMs });
    return { status: 'drained', inFlight: 0 };
  };

  let stopped: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopped ??= (async () => {
      log.info('stopping', { alreadyDraining: drained !== undefined });
      idleGc.stop();
      await drain();
      micro.stop(); // again: a drain asked for while the sidecar was starting ran before discovery started
      clearTimeout(healthTimer);
      // Calls left over at the drain's bound may have finished since (a preStop drain can run long before SIGTERM).
      const idle = slots.size === 0;
      if (!(await bounded(closeServer(callApi), idle ? 1_000 : 0))) callApi.closeAllConnections();
      const conn = nats.current.nc;
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
