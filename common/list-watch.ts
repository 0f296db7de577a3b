/**
 * A list-watch cache on the plain-JSON client (kube-client.ts), in the manner of client-go's reflector
 * and client-node's ListWatch (the same contract: `InformerLike`, used under ResilientInformer), with a
 * transform applied to every object before it is cached (client-go's transform func: drop what nobody
 * reads, such as managedFields).
 *
 * - start(): LIST in pages (when there is no resourceVersion to resume from; the cache then drops the
 *   objects the list no longer has, with a delete), then WATCH from the list's resourceVersion with
 *   bookmarks; resolves once the watch has started or failed.
 * - The server ends a watch after its timeout: the watch resumes from the last resourceVersion seen. A
 *   410 Gone (the version was compacted away) lists again. Any other failure is reported through 'error'
 *   and the owner (ResilientInformer) restarts it with back-off; the cache stays meanwhile.
 * - add/update/delete handlers get the transformed objects; an update only when the resourceVersion changed.
 */
import type { KubeClient, Query, WatchHandle } from './kube-client';

type ObjectVerb = 'add' | 'update' | 'delete';

/** What the list-watch needs of an object: the fields its cache is keyed and versioned by. */
export interface ObjectLike {
  apiVersion?: string;
  kind?: string;
  metadata?: { name?: string; namespace?: string; resourceVersion?: string };
}

/** The metadata fields fnmesh reads of an API object (plain JSON); the others stay as they came. */
export interface ObjectMeta {
  name?: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  generation?: number;
  deletionTimestamp?: unknown;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  [field: string]: unknown;
}

/** An API object as the API server sends it (a FunctionService, a Deployment), without typed models. */
export interface ApiObject<Spec = unknown, Status = unknown> {
  apiVersion?: string;
  kind?: string;
  metadata?: ObjectMeta;
  spec?: Spec;
  status?: Status;
}

export interface ListWatchOptions<T> {
  client: Pick<KubeClient, 'request' | 'watch'>;
  /** The collection, e.g. `/apis/apps/v1/deployments` or `/apis/fnmesh.io/v1alpha1/namespaces/ns/functionservices`. */
  path: string;
  labelSelector?: string;
  /** Set on every listed object (the API server leaves them off the items of a LIST; watch events carry them). */
  apiVersion: string;
  kind: string;
  /** Applied to every object before it is cached or handed to a handler. Must keep metadata name, namespace, resourceVersion. */
  transform?: (obj: T) => T;
  /** Objects per LIST page (default 100: a restarted operator's peak memory is set by the largest page it holds at once). */
  pageSize?: number;
  /** Server-side watch timeout in seconds (default: random in [300, 600), as client-go's reflector). */
  watchTimeoutSeconds?: () => number;
}

interface ListPage<T> {
  metadata?: { resourceVersion?: string; continue?: string };
  items?: T[];
}

/** A LIST of a whole collection in pages, each item given apiVersion/kind and transformed. */
export async function listAll<T extends ObjectLike>(
  o: ListWatchOptions<T>,
): Promise<{ resourceVersion: string; items: T[] }> {
  const items: T[] = [];
  let resourceVersion = '';
  let cont: string | undefined;
  const transform = o.transform ?? ((x: T) => x);
  do {
    const query: Query = { limit: o.pageSize ?? 100, labelSelector: o.labelSelector, continue: cont };
    const page = await o.client.request<ListPage<T>>('GET', o.path, { query });
    for (const item of page.items ?? [])
      items.push(transform({ ...item, apiVersion: item.apiVersion ?? o.apiVersion, kind: item.kind ?? o.kind }));
    resourceVersion = page.metadata?.resourceVersion ?? '';
    cont = page.metadata?.continue || undefined;
  } while (cont);
  return { resourceVersion, items };
}

function isGone(err: unknown): boolean {
  const e = err as { code?: unknown; statusCode?: unknown } | undefined;
  return e?.code === 410 || e?.statusCode === 410;
}

export class JsonListWatch<T extends ObjectLike> {
  private readonly o: ListWatchOptions<T>;
  private readonly transform: (obj: T) => T;
  /** namespace → name → object */
  private objects = new Map<string, Map<string, T>>();
  private resourceVersion = '';
  private watch: WatchHandle | undefined;
  private stopped = true;
  /** Bumped by stop(): callbacks of an earlier run are ignored. */
  private run = 0;
  private readonly handlers: Record<ObjectVerb, Array<(obj: T) => void>> = { add: [], update: [], delete: [] };
  private readonly errorHandlers: Array<(err?: unknown) => void> = [];

  constructor(options: ListWatchOptions<T>) {
    this.o = options;
    this.transform = options.transform ?? ((x) => x);
  }

  on(verb: ObjectVerb, cb: (obj: T) => void): void;
  on(verb: 'error', cb: (err?: unknown) => void): void;
  on(verb: ObjectVerb | 'error', cb: ((obj: T) => void) | ((err?: unknown) => void)): void {
    if (verb === 'error') this.errorHandlers.push(cb as (err?: unknown) => void);
    else this.handlers[verb].push(cb as (obj: T) => void);
  }

  async start(): Promise<void> {
    this.stopped = false;
    await this.listAndWatch(++this.run);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.run++;
    this.watch?.abort();
    this.watch = undefined;
  }

  get(name: string, namespace?: string): T | undefined {
    return this.objects.get(namespace ?? '')?.get(name);
  }

  list(namespace?: string): ReadonlyArray<T> {
    if (namespace !== undefined) return [...(this.objects.get(namespace)?.values() ?? [])];
    const out: T[] = [];
    for (const byName of this.objects.values()) for (const obj of byName.values()) out.push(obj);
    return out;
  }

  /** The resourceVersion the next watch resumes from ('' lists first). */
  latestResourceVersion(): string {
    return this.resourceVersion;
  }

  private current(run: number): boolean {
    return !this.stopped && run === this.run;
  }

  private fail(run: number, err: unknown): void {
    if (!this.current(run)) return;
    for (const cb of this.errorHandlers) cb(err);
  }

  private async listAndWatch(run: number): Promise<void> {
    if (!this.current(run)) return;
    if (!this.resourceVersion) {
      let listed: { resourceVersion: string; items: T[] };
      try {
        listed = await listAll(this.o);
      } catch (err) {
        this.fail(run, err);
        return;
      }
      if (!this.current(run)) return;
      this.replace(listed.items);
      this.resourceVersion = listed.resourceVersion;
    }
    const query: Query = {
      resourceVersion: this.resourceVersion,
      labelSelector: this.o.labelSelector,
      allowWatchBookmarks: true,
      timeoutSeconds: (this.o.watchTimeoutSeconds ?? (() => 300 + Math.floor(Math.random() * 300)))(),
    };
    const handle = await this.o.client.watch(
      this.o.path,
      query,
      (type, obj) => this.onEvent(run, type, obj),
      (err) => this.onDone(run, err),
    );
    if (this.current(run)) this.watch = handle;
    else handle.abort();
  }

  private onEvent(run: number, type: string, raw: unknown): void {
    if (!this.current(run)) return;
    const obj = raw as T & { code?: unknown };
    switch (type) {
      case 'ADDED':
      case 'MODIFIED':
        this.upsert(this.transform(obj));
        break;
      case 'DELETED':
        this.remove(this.transform(obj));
        break;
      case 'BOOKMARK':
        break;
      case 'ERROR':
        // A Status; 410: the resourceVersion is too old. The server closes the watch next: list again then.
        if (obj.code === 410) this.resourceVersion = '';
        return;
      default:
        return;
    }
    const rv = obj.metadata?.resourceVersion;
    if (rv) this.resourceVersion = rv;
  }

  private onDone(run: number, err: unknown): void {
    if (!this.current(run)) return;
    this.watch = undefined;
    if (err && !isGone(err)) {
      this.fail(run, err);
      return;
    }
    if (err) this.resourceVersion = '';
    // The server ended the watch (its timeout) or the version expired: resume, or list again.
    void this.listAndWatch(run);
  }

  /** The cache becomes exactly `items`: deletes for what is gone, adds and updates for the rest. */
  private replace(items: T[]): void {
    const next = new Map<string, Map<string, T>>();
    for (const obj of items) {
      const ns = obj.metadata?.namespace ?? '';
      let byName = next.get(ns);
      if (!byName) next.set(ns, (byName = new Map()));
      byName.set(obj.metadata?.name ?? '', obj);
    }
    const previous = this.objects;
    this.objects = next;
    for (const [ns, byName] of previous) {
      for (const [name, old] of byName) if (!next.get(ns)?.has(name)) this.emit('delete', old);
    }
    for (const [ns, byName] of next) {
      for (const [name, obj] of byName) {
        const old = previous.get(ns)?.get(name);
        if (!old) this.emit('add', obj);
        else if (old.metadata?.resourceVersion !== obj.metadata?.resourceVersion) this.emit('update', obj);
      }
    }
  }

  private upsert(obj: T): void {
    const ns = obj.metadata?.namespace ?? '';
    const name = obj.metadata?.name ?? '';
    let byName = this.objects.get(ns);
    if (!byName) this.objects.set(ns, (byName = new Map()));
    const old = byName.get(name);
    if (old && old.metadata?.resourceVersion === obj.metadata?.resourceVersion) return;
    byName.set(name, obj);
    this.emit(old ? 'update' : 'add', obj);
  }

  private remove(obj: T): void {
    const ns = obj.metadata?.namespace ?? '';
    const byName = this.objects.get(ns);
    const name = obj.metadata?.name ?? '';
    if (!byName?.delete(name)) return;
    if (byName.size === 0) this.objects.delete(ns);
    this.emit('delete', obj);
  }

  private emit(verb: ObjectVerb, obj: T): void {
    for (const cb of this.handlers[verb]) cb(obj);
  }
}
