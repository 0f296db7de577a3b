/**
 * The Kubernetes rule source: every FunctionService object in the cluster (or in one namespace), live.
 *
 * The plain-JSON list-watch (common/list-watch.ts, on common/kube-client.ts: one keep-alive client, paged
 * lists, watches with bookmarks) under the resilient informer (common/kube-informer.ts: restart with
 * back-off after any error, periodic resync) lists and watches `functionservices.fnmesh.io`; each object is
 * converted to the manifest type with `parseFunctionService`. An object that fails validation (the CRD
 * accepts something the gateway cannot use) is logged with its namespace/name and the field, and skipped:
 * its last good version stays in use, as the file source keeps a broken file's last good contents. Every
 * add/update/delete calls `onChange` with the whole set, debounced so that a burst of events (the first
 * list, a `kubectl apply -f dir/`) emits once.
 *
 * `start()` resolves after the first list, having called `onChange` once; it rejects with the problem and
 * its fix when the list cannot succeed (the CRD not installed, RBAC missing, credentials refused) or the API
 * server stays unreachable for `syncTimeoutMs`.
 *
 * Only the gateway reads rules from Kubernetes, so this lives in gateway/. It never loads
 * @kubernetes/client-node: the access comes from common/kubeconfig.ts's `loadKubeAccess`, which loads it only
 * for a kubeconfig it cannot read itself (an exec plugin, an auth provider).
 */
import { ConfigError, errorMessage } from '../common/errors';
import { KUBECONFIG_VAR, type KubeAccess } from '../common/kube-access';
import { KubeClient } from '../common/kube-client';
import { ResilientInformer, jsonInformerFactory, type InformerFactory } from '../common/kube-informer';
import type { ApiObject } from '../common/list-watch';
import { silentLogger, type Logger } from '../common/logger';
import { API_VERSION, CRD_PLURAL, KIND, functionServicePath } from '../common/crd-names';
import { parseFunctionService, type FunctionService } from '../common/manifest';
import { notifyRuleListener, type RuleSource } from '../common/manifest-source';

/** The fix printed when the CRD is missing. */
export const CRD_MISSING_FIX = 'the FunctionService CRD is not installed: kubectl apply -f crds/';
/** The fix printed when RBAC forbids listing or watching. */
export const RBAC_FIX =
  "the gateway's ServiceAccount may not list/watch functionservices: apply deploy/rbac/gateway.yaml";

export interface KubernetesRuleSourceOptions {
  /** How to reach the API server (common/kubeconfig.ts's `loadKubeAccess`). */
  kubeAccess: KubeAccess;
  /** Watch only this namespace; all namespaces when absent. */
  namespace?: string;
  logger?: Logger;
  /** Events closer together than this emit once (milliseconds, default 25). */
  debounceMs?: number;
  /** Every this many ms the informer re-delivers every object (default 60 s; 0 disables). */
  resyncMs?: number;
  /** How long start() waits for the first list while the API server is unreachable (default 30 s). */
  syncTimeoutMs?: number;
  initialBackoffMs?: number;
  maxBackoffMs?: number;
  /** Replaces the real informer (unit tests). */
  informerFactory?: InformerFactory<FunctionServiceObject>;
}

/** A FunctionService as the API server sends it (plain JSON); the conversion reads metadata and spec. */
export type FunctionServiceObject = ApiObject;

/** What the informer caches of an object: neither its status nor its managedFields, which the gateway never reads. Pure. */
export function slimObject(obj: FunctionServiceObject): FunctionServiceObject {
  const { status: _status, ...rest } = obj;
  const { managedFields: _managedFields, ...metadata } = obj.metadata ?? {};
  return { ...rest, metadata };
}

/** `namespace/name` of an API object, for logs. */
export function objectName(obj: FunctionServiceObject): string {
  return `${obj.metadata?.namespace ?? ''}/${obj.metadata?.name ?? ''}`;
}

/**
 * An API object → the manifest type (pure). Keeps what the gateway uses (name, namespace, generation,
 * labels, annotations, uid, resourceVersion, spec) and drops managedFields and status; throws ConfigError
 * naming `functionservice <ns>/<name>` and each bad field.
 */
export function toFunctionService(obj: FunctionServiceObject): FunctionService {
  const m = obj.metadata ?? {};
  const metadata: Record<string, unknown> = { name: m.name, namespace: m.namespace };
  if (m.generation !== undefined) metadata.generation = m.generation;
  if (m.labels) metadata.labels = m.labels;
  if (m.annotations) metadata.annotations = m.annotations;
  if (m.uid) metadata.uid = m.uid;
  if (m.resourceVersion) metadata.resourceVersion = m.resourceVersion;
  const value = { apiVersion: obj.apiVersion ?? API_VERSION, kind: obj.kind ?? KIND, metadata, spec: obj.spec ?? {} };
  return parseFunctionService(value, `functionservice ${objectName(obj)}`);
}

/**
 * Collects triggers into one call: the first trigger arms a timer of `delayMs`; triggers while it is armed
 * join that call. `flush()` runs a pending call now; `cancel()` drops it.
 */
export class Debouncer {
  private timer: NodeJS.Timeout | undefined;
  constructor(
    private readonly delayMs: number,
    private readonly fn: () => void,
  ) {}
  trigger(): void {
    if (this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.fn();
    }, this.delayMs);
    this.timer.unref?.();
  }
  pending(): boolean {
    return this.timer !== undefined;
  }
  flush(): void {
    this.cancel();
    this.fn();
  }
  cancel(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }
}

/** HTTP status of what the client throws or a watch reports (KubeApiError `.code`/`.statusCode`). */
export function statusOf(err: unknown): number | undefined {
  if (err === null || typeof err !== 'object') return undefined;
  const e = err as { code?: unknown; statusCode?: unknown; body?: unknown };
  if (typeof e.statusCode === 'number') return e.statusCode;
  if (typeof e.code === 'number') return e.code;
  return undefined;
}

/** The API server's own message inside what the client throws (a Status as the body), when there is one. */
function apiMessage(err: unknown): string {
  const body = (err as { body?: unknown } | null)?.body;
  if (typeof body === 'string') {
    try {
      const parsed = JSON.parse(body) as { message?: unknown };
      if (typeof parsed.message === 'string') return parsed.message;
    } catch {
      // not JSON
    }
  }
  if (body && typeof body === 'object' && typeof (body as { message?: unknown }).message === 'string')
    return (body as { message: string }).message;
  const msg = errorMessage(err);
  return msg.length > 300 ? `${msg.slice(0, 300)}…` : msg;
}

/**
 * What a failed first list means, and its fix (pure). `terminal` errors cannot heal by retrying, so start()
 * rejects at once; others (network, 5xx) are retried until the sync timeout.
 */
export function describeListError(err: unknown, where: string): { terminal: boolean; message: string } {
  const status = statusOf(err);
  const detail = apiMessage(err);
  switch (status) {
    case 404:
      return {
        terminal: true,
        message: `cannot list FunctionServices ${where}: ${CRD_MISSING_FIX} (the API server answered 404: ${detail})`,
      };
    case 403:
      return {
        terminal: true,
        message: `cannot list FunctionServices ${where}: ${RBAC_FIX} (the API server answered 403: ${detail})`,
      };
    case 401:
      return {
        terminal: true,
        message: `cannot list FunctionServices ${where}: the API server refused the gateway's credentials (401): check the token or client certificate in ${KUBECONFIG_VAR} / KUBECONFIG, or the pod's ServiceAccount token`,
      };
    default:
      return {
        terminal: false,
        message: `cannot list FunctionServices ${where}: the Kubernetes API server is not reachable or failing (${status ? `HTTP ${status}: ` : ''}${detail}); check ${KUBECONFIG_VAR} / KUBECONFIG or the in-cluster configuration`,
      };
  }
}

interface Entry {
  resourceVersion?: string;
  /** Last good version; undefined if the object never validated. */
  good?: FunctionService;
  /** The current version's validation error, if it failed. */
  error?: string;
}

export class KubernetesRuleSource implements RuleSource {
  private readonly options: KubernetesRuleSourceOptions;
  private readonly logger: Logger;
  private readonly entries = new Map<string, Entry>();
  private readonly debouncer: Debouncer;
  private informer: ResilientInformer<FunctionServiceObject> | undefined;
  private client: KubeClient | undefined;
  private onChange: ((services: FunctionService[]) => void) | undefined;
  private lastError: unknown;
  private stopped = false;
  private synced = false;

  constructor(options: KubernetesRuleSourceOptions) {
    this.options = options;
    this.logger = options.logger ?? silentLogger;
    this.debouncer = new Debouncer(options.debounceMs ?? 25, () => this.emit());
  }

  /** Where this source looks, for messages: `in all namespaces of https://…` or `in namespace x of …`. */
  private where(): string {
    const server = this.options.kubeAccess.server;
    return `${this.options.namespace ? `in namespace "${this.options.namespace}"` : 'in all namespaces'} of ${server}`;
  }

  async start(onChange: (services: FunctionService[]) => void): Promise<void> {
    this.onChange = onChange;
    const ns = this.options.namespace;
    const factory = this.options.informerFactory ?? this.realFactory(ns);
    const informer = new ResilientInformer<FunctionServiceObject>({
      resource: CRD_PLURAL,
      factory,
      handlers: {
        add: (obj) => this.upsert(obj),
        update: (obj) => this.upsert(obj),
        delete: (obj) => this.remove(obj),
      },
      resyncMs: this.options.resyncMs ?? 60_000,
      ...(this.options.initialBackoffMs !== undefined ? { initialBackoffMs: this.options.initialBackoffMs } : {}),
      ...(this.options.maxBackoffMs !== undefined ? { maxBackoffMs: this.options.maxBackoffMs } : {}),
      logger: this.logger,
      onRestart: (err) => {
        this.lastError = err;
      },
    });
    this.informer = informer;
    await informer.start();
    const deadline = Date.now() + (this.options.syncTimeoutMs ?? 30_000);
    while (!informer.hasSynced()) {
      if (this.stopped) throw new Error('the Kubernetes rule source was stopped before its first list');
      if (this.lastError !== undefined) {
        const d = describeListError(this.lastError, this.where());
        if (d.terminal || Date.now() >= deadline) {
          await this.stop();
          throw new ConfigError(d.message);
        }
      } else if (Date.now() >= deadline) {
        await this.stop();
        throw new ConfigError(
          `cannot list FunctionServices ${this.where()}: no answer within ${this.options.syncTimeoutMs ?? 30_000} ms`,
        );
      }
      await new Promise((r) => setTimeout(r, 25));
    }
    this.synced = true;
    this.logger.info('FunctionServices listed', { where: this.where(), objects: this.entries.size });
    this.debouncer.flush();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.debouncer.cancel();
    await this.informer?.stop();
    await this.client?.close();
    this.onChange = undefined;
  }

  /** The whole current set: the last good version of every object, sorted by namespace/name. */
  current(): FunctionService[] {
    const out: FunctionService[] = [];
    for (const key of [...this.entries.keys()].sort()) {
      const good = this.entries.get(key)!.good;
      if (good) out.push(good);
    }
    return out;
  }

  private realFactory(ns: string | undefined): InformerFactory<FunctionServiceObject> {
    // A LIST now and then and one watch: two connections are plenty.
    this.client ??= new KubeClient(this.options.kubeAccess, { connections: 2 });
    return jsonInformerFactory<FunctionServiceObject>({
      client: this.client,
      path: functionServicePath(ns),
      apiVersion: API_VERSION,
      kind: KIND,
      transform: slimObject,
    });
  }

  private upsert(obj: FunctionServiceObject): void {
    if (this.stopped) return;
    const key = objectName(obj);
    const entry = this.entries.get(key) ?? {};
    const rv = obj.metadata?.resourceVersion;
    // A resync re-delivers unchanged objects: nothing to do (and nothing to log again).
    if (rv !== undefined && entry.resourceVersion === rv && this.entries.has(key)) return;
    entry.resourceVersion = rv;
    try {
      entry.good = toFunctionService(obj);
      delete entry.error;
    } catch (err) {
      entry.error = errorMessage(err);
      this.logger.error(
        entry.good
          ? 'a FunctionService is not valid for the gateway; its last good version stays in use'
          : 'a FunctionService is not valid for the gateway; it is ignored until fixed',
        { service: key, resourceVersion: rv, error: entry.error },
      );
    }
    this.entries.set(key, entry);
    this.changed();
  }

  private remove(obj: FunctionServiceObject): void {
    if (this.stopped) return;
    if (this.entries.delete(objectName(obj))) this.changed();
  }

  private changed(): void {
    // Before the first list completes, start() emits once at the end.
    if (this.synced) this.debouncer.trigger();
  }

  private emit(): void {
    notifyRuleListener(this.onChange, this.current(), this.logger, 'FunctionService');
  }
}
