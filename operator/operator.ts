/**
 * The operator's wiring: two informers (FunctionServices; the Deployments it manages) whose handlers only
 * enqueue keys, one controller reconciling them with N workers while this replica leads (a Lease), and
 * the ops server (/healthz, /readyz, /metrics).
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
import {
  AppsV1Api,
  CoordinationV1Api,
  CoreV1Api,
  CustomObjectsApi,
  type KubeConfig,
  type KubernetesListObject,
  type KubernetesObject,
  type V1Deployment,
} from '@kubernetes/client-node';
import { Counter, type Registry } from 'prom-client';
import { errorMessage } from '../common/errors';
import { API_VERSION, KIND } from '../common/manifest';
import type { Logger } from '../common/logger';
import { createRegistry } from '../common/metrics';
import { handleOps, type Readiness } from '../common/ops-server';
import type { OperatorConfig } from './config';
import { Controller } from './controller';
import { FIELD_MANAGER, MANAGED_BY_LABEL } from './desired-deployment';
import { EventRecorder, coreEventSink } from './events';
import { ResilientInformer, kubeInformerFactory } from './informer';
import { objectKey, ownerKey } from './keys';
import { GROUP, PLURAL, VERSION, kubeWriter } from './kube-writer';
import { LeaderElector, coordinationLeaseClient } from './leader-election';
import { OperatorMetrics } from './metrics';
import { FunctionServiceReconciler, type FunctionServiceObject } from './reconciler';
import { WorkQueue } from './workqueue';

export const CONTROLLER_NAME = 'functionservice';
export const DEPLOYMENT_SELECTOR = `${MANAGED_BY_LABEL}=${FIELD_MANAGER}`;

export interface OperatorOptions {
  config: OperatorConfig;
  kubeConfig: KubeConfig;
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

/**
 * A LIST response with its objects as watch events deliver them: each with its apiVersion and kind.
 *
 * The API server leaves `apiVersion` and `kind` off the items of a list (they are on the list itself);
 * watch events carry both. The informer cache must hold one shape whatever filled it (list or watch), or
 * anything comparing with the cached objects sees a difference after every restart. Lists must be plain
 * JSON (the custom objects API): client-node's typed list functions return model instances instead
 * (Dates for timestamps, only the fields the model knows).
 */
export function asWatchedList<T extends KubernetesObject>(list: KubernetesListObject<T>, apiVersion: string, kind: string): KubernetesListObject<T> {
  const items = (list.items ?? []).map((item) => ({ ...item, apiVersion: item.apiVersion ?? apiVersion, kind: item.kind ?? kind }));
  return { ...list, items };
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
  private readonly fsInformer: ResilientInformer<KubernetesObject>;
  private readonly depInformer: ResilientInformer<V1Deployment>;
  private readonly elector: LeaderElector | undefined;
  private readonly apiRequests: Counter<'verb' | 'resource'>;
  private readonly requestLog: ApiRequest[] = [];
  private readonly reconcileCounts = new Map<string, number>();
  private server: http.Server | undefined;
  private leading = false;
  private controllerStarted = false;
  private stopping = false;
  private stopped: Promise<void> | undefined;

  constructor(options: OperatorOptions) {
    this.o = options;
    const { config, kubeConfig: kc } = options;
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
    this.countRequests(kc);

    const apps = kc.makeApiClient(AppsV1Api);
    const custom = kc.makeApiClient(CustomObjectsApi);
    const core = kc.makeApiClient(CoreV1Api);
    const ns = config.watchNamespace;

    this.events = new EventRecorder({ sink: coreEventSink(core), instance: this.identity, logger: this.log });
    this.queue = new WorkQueue({ metrics: this.metrics.queueHooks(CONTROLLER_NAME) });

    const fsPath = ns ? `/apis/${GROUP}/${VERSION}/namespaces/${ns}/${PLURAL}` : `/apis/${GROUP}/${VERSION}/${PLURAL}`;
    const listFs = async (): Promise<KubernetesListObject<KubernetesObject>> =>
      asWatchedList(
        (ns
          ? await custom.listNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: ns, plural: PLURAL })
          : await custom.listClusterCustomObject({ group: GROUP, version: VERSION, plural: PLURAL })) as KubernetesListObject<KubernetesObject>,
        API_VERSION,
        KIND,
      );
    const depPath = ns ? `/apis/apps/v1/namespaces/${ns}/deployments` : '/apis/apps/v1/deployments';
    // Plain JSON like the watch (not AppsV1Api's typed list): the same request through the generic client.
    const listDeps = async (): Promise<KubernetesListObject<V1Deployment>> =>
      asWatchedList(
        (ns
          ? await custom.listNamespacedCustomObject({ group: 'apps', version: 'v1', namespace: ns, plural: 'deployments', labelSelector: DEPLOYMENT_SELECTOR })
          : await custom.listClusterCustomObject({ group: 'apps', version: 'v1', plural: 'deployments', labelSelector: DEPLOYMENT_SELECTOR })) as KubernetesListObject<V1Deployment>,
        'apps/v1',
        'Deployment',
      );

    const enqueue = (key: string | undefined): void => {
      if (key) this.queue.add(key);
    };
    this.fsInformer = new ResilientInformer<KubernetesObject>({
      resource: 'functionservices',
      factory: kubeInformerFactory(kc, fsPath, listFs),
      handlers: {
        add: (obj) => enqueue(objectKey(obj)),
        update: (obj) => enqueue(objectKey(obj)),
        delete: (obj) => {
          const key = objectKey(obj);
          if (key) this.reconciler.forget(key, obj.metadata?.uid);
          enqueue(key);
        },
      },
      resyncMs: config.resyncMs,
      logger: this.log,
      onRestart: () => this.metrics.informerRestarts.labels('functionservices').inc(),
    });
    const onDeployment = (obj: V1Deployment): void => {
      const key = ownerKey(obj);
      if (!key) return;
      this.reconciler.deploymentChanged(key);
      enqueue(key);
    };
    this.depInformer = new ResilientInformer<V1Deployment>({
      resource: 'deployments',
      factory: kubeInformerFactory(kc, depPath, listDeps, DEPLOYMENT_SELECTOR),
      handlers: { add: onDeployment, update: onDeployment, delete: onDeployment },
      resyncMs: config.resyncMs,
      logger: this.log,
      onRestart: () => this.metrics.informerRestarts.labels('deployments').inc(),
    });

    this.reconciler = new FunctionServiceReconciler({
      functionServices: { get: (namespace, name) => this.fsInformer.get(namespace, name) as FunctionServiceObject | undefined },
      deployments: { get: (namespace, name) => this.depInformer.get(namespace, name) },
      writer: kubeWriter(apps, custom),
      events: this.events,
      sidecar: config.sidecar,
    });
    this.controller = new Controller({
      name: CONTROLLER_NAME,
      queue: this.queue,
      workers: config.concurrentReconciles,
      logger: this.log,
      metrics: this.metrics,
      reconcile: (key, log) => {
        this.reconcileCounts.set(key, (this.reconcileCounts.get(key) ?? 0) + 1);
        return this.reconciler.reconcile(key, log);
      },
    });

    const le = config.leaderElection;
    if (le.enabled) {
      this.elector = new LeaderElector({
        client: coordinationLeaseClient(kc.makeApiClient(CoordinationV1Api), le.leaseNamespace, le.leaseName),
        identity: this.identity,
        timing: { leaseDurationMs: le.leaseDurationMs, renewDeadlineMs: le.renewDeadlineMs, retryPeriodMs: le.retryPeriodMs },
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

  /** Reconciles of one key (or of all keys) since start. */
  reconcileCount(key?: string): number {
    if (key !== undefined) return this.reconcileCounts.get(key) ?? 0;
    let n = 0;
    for (const v of this.reconcileCounts.values()) n += v;
    return n;
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
    await Promise.all([this.fsInformer.stop(), this.depInformer.stop()]);
    const server = this.server;
    if (server) {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections?.();
    }
    this.log.info('operator stopped');
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
    for (const obj of this.fsInformer.list()) {
      const key = objectKey(obj);
      if (key) this.queue.add(key);
    }
    this.controller.start();
    this.log.info('leading: reconciling', { functionServices: this.fsInformer.list().length, workers: this.o.config.concurrentReconciles });
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

  /** Counts every request the API clients make (watches go through another path and are not counted). */
  private countRequests(kc: KubeConfig): void {
    const original = kc.applySecurityAuthentication.bind(kc);
    kc.applySecurityAuthentication = async (context) => {
      try {
        const method = String(context.getHttpMethod()).toUpperCase();
        const { resource, namespace } = resourceOfPath(new URL(context.getUrl()).pathname);
        this.apiRequests.labels(method, resource).inc();
        if (WRITE_METHODS.has(method)) {
          this.requestLog.push({ method, resource, ...(namespace ? { namespace } : {}) });
          if (this.requestLog.length > 10_000) this.requestLog.splice(0, 5_000);
        }
      } catch (err) {
        this.log.debug('counting a request failed', { error: errorMessage(err) });
      }
      return original(context);
    };
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
