/**
 * The operator's wiring: two informers (FunctionServices; the Deployments it manages) whose handlers only
 * enqueue keys, one controller reconciling them with N workers while this replica leads (a Lease), and
 * the ops server (/healthz, /readyz, /metrics).
 *
 * API traffic: the informers, the reconciles' writes and Events go through one plain-JSON client
 * (common/kube-client.ts: a keep-alive connection pool, no typed models); the caches keep slimmed objects
 * (cache-transform.ts). Only the FunctionService informer resyncs: a Deployment resync would only queue its
 * owner a second time.
 *
 * Life: start() starts the informers, the leader election and the ops server. On becoming leader the
 * controller waits for both caches, queues every FunctionService and starts its workers. On losing
 * leadership the process must stop reconciling at once: `onLostLeadership` (main exits the process, as
 * controller-runtime does). stop() drains the workers, releases the lease, stops the informers and the
 * ops server.
 */
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import os from 'node:os';
import type { AddressInfo } from 'node:net';
import type { V1Deployment } from '@kubernetes/client-node';
import { Counter, type Registry } from 'prom-client';
import type { KubeAccess } from '../common/kube-access';
import { KubeClient } from '../common/kube-client';
import { API_VERSION, CRD_PLURAL, KIND, functionServicePath } from '../common/crd-names';
import type { Logger } from '../common/logger';
import { createRegistry } from '../common/metrics';
import { handleOps, type Readiness } from '../common/ops-server';
import type { OperatorConfig } from './config';
import { Controller } from './controller';
import { FIELD_MANAGER, MANAGED_BY_LABEL } from './desired-deployment';
import { slimDeployment, slimFunctionService } from './cache-transform';
import { EventRecorder, jsonEventSink } from './events';
import { ForeignDeploymentWatches } from './foreign-watches';
import { ResilientInformer, jsonInformerFactory } from '../common/kube-informer';
import { objectKey, ownerKey, splitKey } from './keys';
import { kubeWriter, secretWriter } from './kube-writer';
import { DEFAULT_RESPONSE_TTL_MS, GATEWAY_IDENTITY } from '../common/nats-identity';
import { NatsCredsMinter, requeueDelayMs } from './creds-minter';
import { LeaderElector, jsonLeaseClient } from './leader-election';
import { OperatorMetrics } from './metrics';
import { FunctionServiceReconciler, type FunctionServiceObject } from './reconciler';
import { WorkQueue } from './workqueue';
import { NatsCaFileSource } from './nats-ca-source';

export const CONTROLLER_NAME = 'functionservice';
/** The work queue key of the gateway's credentials Secret (not a FunctionService key: it has no slash). */
export const GATEWAY_CREDS_KEY = 'gateway-nats-creds';
export const DEPLOYMENT_SELECTOR = `${MANAGED_BY_LABEL}=${FIELD_MANAGER}`;

export interface OperatorOptions {
  config: OperatorConfig;
  /** How to reach the API server: common/kubeconfig.ts's `loadKubeAccess` (main, the tests). */
  kubeAccess: KubeAccess;
  logger: Logger;
  /** Default: a fresh registry with the process metrics. */
  registry?: Registry;
  /** This replica's name in the Lease and in Events (default: host name and a random suffix). */
  identity?: string;
  /** Called when this replica loses the lease it held (not on stop()); main exits the process. */
  onLostLeadership(): void;
  /** Serve /healthz /readyz /metrics on config.listen (default true). */
  serveOps?: boolean;
}

/** One API request the operator's clients made (for the request metric and tests). */
export interface ApiRequest {
  method: string;
  /** `deployments`, `functionservices/status`, `events`, `leases`, ... */
  resource: string;
  namespace?: string;
}

const WRITE_METHODS = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

/** The resource (and subresource) and namespace of an API path. Pure. */
export function resourceOfPath(pathname: string): { resource: string; namespace?: string } {
  const parts = pathname.split('/').filter(Boolean);
  // /api/v1/... or /apis/group/version/...
  let rest = parts[0] === 'api' ? parts.slice(2) : parts.slice(3);
  let namespace: string | undefined;
  if (rest[0] === 'namespaces' && rest.length >= 3) {
    namespace = rest[1];
    rest = rest.slice(2);
  }
  const resource = rest[0] ?? '(none)';
  const sub = rest[2];
  return { resource: sub ? `${resource}/${sub}` : resource, ...(namespace ? { namespace } : {}) };
}

export class Operator {
  readonly metrics: OperatorMetrics;
  readonly registry: Registry;
  readonly identity: string;
  readonly events: EventRecorder;
  private readonly o: OperatorOptions;
  private readonly log: Logger;
  private readonly queue: WorkQueue;
  private readonly controller: Controller;
  private readonly reconciler: FunctionServiceReconciler;
  private readonly client: KubeClient;
  private readonly natsCreds: NatsCredsMinter | undefined;
  private readonly natsCa: NatsCaFileSource | undefined;
  private readonly fsInformer: ResilientInformer<FunctionServiceObject>;
  private readonly depInformer: ResilientInformer<V1Deployment>;
  private readonly foreignWatches: ForeignDeploymentWatches;
  private readonly elector: LeaderElector | undefined;
  private readonly apiRequests: Counter<'verb' | 'resource'>;
  private readonly requestLog: ApiRequest[] = [];
  /** Reconciles per key of a FunctionService that exists (forgotten when it is deleted), and in all. */
  private readonly reconcileCounts = new Map<string, number>();
  private reconcileTotal = 0;
  private server: http.Server | undefined;
  private leading = false;
  private controllerStarted = false;
  private stopping = false;
  private stopped: Promise<void> | undefined;

  constructor(options: OperatorOptions) {
    this.o = options;
    const { config } = options;
    this.identity = options.identity ?? `${os.hostname()}_${randomBytes(4).toString('hex')}`;
    this.log = options.logger.child({ identity: this.identity });
    this.registry = options.registry ?? createRegistry('operator');
    this.metrics = new OperatorMetrics(this.registry);
    this.apiRequests = new Counter({
      name: 'fnmesh_operator_api_requests_total',
      help: 'Requests the operator made to the API server, by verb and resource (watches not counted)',
      labelNames: ['verb', 'resource'],
      registers: [this.registry],
    });
    this.client = new KubeClient(options.kubeAccess, {
      connections: config.apiConnections,
      onRequest: (method, path) => this.countRequest(method, path),
    });
    const ns = config.watchNamespace;

    this.events = new EventRecorder({ sink: jsonEventSink(this.client), instance: this.identity, logger: this.log });
    this.queue = new WorkQueue({ metrics: this.metrics.queueHooks(CONTROLLER_NAME) });
    this.foreignWatches = new ForeignDeploymentWatches({
      client: this.client,
      enqueue: (key) => this.queue.add(key),
      enqueueAfter: (key, ms) => this.queue.addAfter(key, ms),
      logger: this.log,
    });

    const enqueue = (key: string | undefined): void => {
      if (key) this.queue.add(key);
    };
    this.fsInformer = new ResilientInformer<FunctionServiceObject>({
      resource: CRD_PLURAL,
      factory: jsonInformerFactory<FunctionServiceObject>({
        client: this.client,
        path: functionServicePath(ns),
        apiVersion: API_VERSION,
        kind: KIND,
        transform: slimFunctionService,
      }),
      handlers: {
        add: (obj) => enqueue(objectKey(obj)),
        update: (obj) => enqueue(objectKey(obj)),
        delete: (obj) => {
          const key = objectKey(obj);
          if (key) {
            this.reconciler.forget(key, obj.metadata?.uid);
            this.reconcileCounts.delete(key);
          }
          enqueue(key);
        },
      },
      resyncMs: config.resyncMs,
      logger: this.log,
      onRestart: () => this.metrics.informerRestarts.labels(CRD_PLURAL).inc(),
    });
    // A Deployment queues the FunctionService that controls it, or else (one in the way: ownership.ts) the
    // one of its name, if any.
    const onDeployment = (obj: V1Deployment): void => {
      const key = ownerKey(obj) ?? objectKey(obj);
      if (!key) return;
      this.reconciler.deploymentChanged(key);
      enqueue(key);
    };
    this.depInformer = new ResilientInformer<V1Deployment>({
      resource: 'deployments',
      factory: jsonInformerFactory<V1Deployment>({
        client: this.client,
        path: ns ? `/apis/apps/v1/namespaces/${ns}/deployments` : '/apis/apps/v1/deployments',
        labelSelector: DEPLOYMENT_SELECTOR,
        apiVersion: 'apps/v1',
        kind: 'Deployment',
        transform: slimDeployment,
      }),
      handlers: { add: onDeployment, update: onDeployment, delete: onDeployment },
      // The FunctionService resync reconciles every key already; this one would only queue them twice.
      resyncMs: 0,
      logger: this.log,
      onRestart: () => this.metrics.informerRestarts.labels('deployments').inc(),
    });

    if (config.nats) this.natsCreds = new NatsCredsMinter({ secrets: secretWriter(this.client), config: config.nats });
    if (config.sidecar.natsTlsCaFile) this.natsCa = new NatsCaFileSource(config.sidecar.natsTlsCaFile);
    this.reconciler = new FunctionServiceReconciler({
      ...(this.natsCreds ? { natsCreds: this.natsCreds } : {}),
      ...(this.natsCa ? { natsCa: { source: this.natsCa, secrets: secretWriter(this.client) } } : {}),
      functionServices: { get: (namespace, name) => this.fsInformer.get(namespace, name) },
      deployments: { get: (namespace, name) => this.depInformer.get(namespace, name) },
      writer: kubeWriter(this.client),
      events: this.events,
      sidecar: config.sidecar,
      foreignWatches: this.foreignWatches,
      statusProgressIntervalMs: config.statusProgressIntervalMs,
    });
    this.controller = new Controller({
      name: CONTROLLER_NAME,
      queue: this.queue,
      workers: config.concurrentReconciles,
      logger: this.log,
      metrics: this.metrics,
      reconcile: (key, log) => {
        if (key === GATEWAY_CREDS_KEY) return this.reconcileGatewayCreds(log);
        this.reconcileTotal++;
        if (this.fsExists(key)) this.reconcileCounts.set(key, (this.reconcileCounts.get(key) ?? 0) + 1);
        return this.reconciler.reconcile(key, log);
      },
    });

    const le = config.leaderElection;
    if (le.enabled) {
      this.elector = new LeaderElector({
        client: jsonLeaseClient(this.client, le.leaseNamespace, le.leaseName),
        identity: this.identity,
        timing: {
          leaseDurationMs: le.leaseDurationMs,
          renewDeadlineMs: le.renewDeadlineMs,
          retryPeriodMs: le.retryPeriodMs,
        },
        logger: this.log,
        onStartedLeading: () => this.startLeading(),
        onStoppedLeading: () => {
          this.leading = false;
          this.metrics.leader.set(0);
          if (!this.stopping) {
            this.log.error('lost the leader lease; stopping');
            this.o.onLostLeadership();
          }
        },
      });
    }
  }

  async start(): Promise<void> {
    // A missing or non-PEM CA file stops the operator at start, naming FNMESH_SIDECAR_NATS_TLS_CA_FILE.
    const ca = this.natsCa?.read();
    if (ca) this.log.info("the sidecars' NATS CA", { file: this.natsCa!.file, sha256: ca.sha256 });
    if (this.o.serveOps !== false) await this.listen();
    await Promise.all([this.fsInformer.start(), this.depInformer.start()]);
    if (this.elector) this.elector.start();
    else this.startLeading();
  }

  /** The ops server's address (after start). */
  opsAddress(): AddressInfo | undefined {
    const a = this.server?.address();
    return a && typeof a === 'object' ? a : undefined;
  }

  isLeader(): boolean {
    return this.leading;
  }

  synced(): boolean {
    return this.fsInformer.hasSynced() && this.depInformer.hasSynced();
  }

  readiness(): Readiness {
    if (this.stopping) return { ready: false, reason: 'stopping' };
    if (!this.fsInformer.hasSynced()) return { ready: false, reason: 'the FunctionService cache has not synced' };
    if (!this.depInformer.hasSynced()) return { ready: false, reason: 'the Deployment cache has not synced' };
    // A synced standby is ready too: it can take over at once.
    return { ready: true };
  }

  /** Reconciles of one key (of an existing FunctionService), or of all keys, since start. */
  reconcileCount(key?: string): number {
    if (key !== undefined) return this.reconcileCounts.get(key) ?? 0;
    return this.reconcileTotal;
  }

  /** Write requests (POST/PUT/PATCH/DELETE) made since start, optionally of one resource. */
  writes(filter?: (r: ApiRequest) => boolean): ApiRequest[] {
    return this.requestLog.filter((r) => WRITE_METHODS.has(r.method) && (!filter || filter(r)));
  }

  /** Drains the workers, releases the lease, stops the informers and the ops server. Idempotent. */
  stop(): Promise<void> {
    this.stopped ??= this.doStop();
    return this.stopped;
  }

  private async doStop(): Promise<void> {
    this.stopping = true;
    await this.controller.stop();
    await this.elector?.stop();
    this.leading = false;
    this.metrics.leader.set(0);
    this.foreignWatches.stop();
    await Promise.all([this.fsInformer.stop(), this.depInformer.stop()]);
    await this.client.close();
    const server = this.server;
    if (server) {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections?.();
    }
    this.log.info('operator stopped');
  }

  private fsExists(key: string): boolean {
    const { namespace, name } = splitKey(key);
    return this.fsInformer.get(namespace, name) !== undefined;
  }

  /** The gateway's own credentials, minted and rotated like a FunctionService's (no owner: it stays). */
  private async reconcileGatewayCreds(log: Logger): Promise<{ requeueAfterMs: number } | undefined> {
    const nats = this.o.config.nats;
    if (!this.natsCreds || !nats) return undefined;
    const checkAt = await this.natsCreds.ensure(
      {
        identity: GATEWAY_IDENTITY,
        namespace: nats.gatewayCreds.namespace,
        name: nats.gatewayCreds.name,
        responseTtlMs: DEFAULT_RESPONSE_TTL_MS,
      },
      log,
    );
    return { requeueAfterMs: requeueDelayMs(checkAt, new Date()) };
  }

  private startLeading(): void {
    if (this.stopping || this.leading) return;
    this.leading = true;
    this.metrics.leader.set(1);
    void this.startController();
  }

  private async startController(): Promise<void> {
    if (this.controllerStarted) return;
    while (!this.synced()) {
      if (this.stopping || !this.leading) return;
      await new Promise((r) => setTimeout(r, 25));
    }
    if (this.stopping || !this.leading || this.controllerStarted) return;
    this.controllerStarted = true;
    if (this.natsCreds) this.queue.add(GATEWAY_CREDS_KEY);
    for (const obj of this.fsInformer.list()) {
      const key = objectKey(obj);
      if (key) this.queue.add(key);
    }
    this.controller.start();
    this.log.info('leading: reconciling', {
      functionServices: this.fsInformer.list().length,
      workers: this.o.config.concurrentReconciles,
    });
  }

  private async listen(): Promise<void> {
    const { host, port } = this.o.config.listen;
    const server = http.createServer((req, res) => {
      if (!handleOps(req, res, { registry: this.registry, readiness: () => this.readiness() })) {
        res.writeHead(404, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: 'not found' }));
      }
    });
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    this.log.info('ops server listening', { address: this.opsAddress() });
  }

  /** Counts one request (watches are not counted). */
  private countRequest(method: string, path: string): void {
    const { resource, namespace } = resourceOfPath(path);
    this.apiRequests.labels(method, resource).inc();
    if (WRITE_METHODS.has(method)) {
      this.requestLog.push({ method, resource, ...(namespace ? { namespace } : {}) });
      if (this.requestLog.length > 10_000) this.requestLog.splice(0, 5_000);
    }
  }
}

/** Builds and starts an operator. */
export async function startOperator(options: OperatorOptions): Promise<Operator> {
  const operator = new Operator(options);
  try {
    await operator.start();
  } catch (err) {
    await operator.stop();
    throw err;
  }
  return operator;
}
