/**
 * The list-watch cache's protocol over a scripted client: paged lists, transform, watch events, resume
 * and relist. The real API server proof is in test/operator*.test.ts (restarts, 410 after compaction).
 */
import type { WatchEventHandler, WatchHandle } from './kube-client';
import { JsonListWatch, listAll, type ListWatchOptions } from './list-watch';

interface Obj {
  apiVersion?: string;
  kind?: string;
  metadata: { name: string; namespace: string; resourceVersion: string; managedFields?: unknown[] };
  spec?: unknown;
}

const obj = (name: string, rv: string, ns = 'ns'): Obj => ({
  metadata: { name, namespace: ns, resourceVersion: rv, managedFields: [{ big: true }] },
  spec: { n: name },
});

/** A client whose list pages and watches the test scripts. */
function scripted() {
  const pages: Array<{ metadata: { resourceVersion: string; continue?: string }; items: Obj[] }> = [];
  const listQueries: unknown[] = [];
  const watches: Array<{
    query: Record<string, unknown>;
    onEvent: WatchEventHandler;
    onDone: (err?: unknown) => void;
    aborted: boolean;
  }> = [];
  const client = {
    async request<T>(_method: string, _path: string, options?: { query?: Record<string, unknown> }): Promise<T> {
      listQueries.push(options?.query);
      const page = pages.shift();
      if (!page) throw Object.assign(new Error('no page'), { code: 500 });
      return page as T;
    },
    async watch(
      _path: string,
      query: Record<string, unknown>,
      onEvent: WatchEventHandler,
      onDone: (err?: unknown) => void,
    ): Promise<WatchHandle> {
      const w = { query, onEvent, onDone, aborted: false };
      watches.push(w);
      return { abort: () => void (w.aborted = true) };
    },
  };
  return { client, pages, listQueries, watches };
}

function options(client: ListWatchOptions<Obj>['client']): ListWatchOptions<Obj> {
  return {
    client,
    path: '/apis/x/v1/things',
    labelSelector: 'a=b',
    apiVersion: 'x/v1',
    kind: 'Thing',
    transform: (o) => ({
      ...o,
      metadata: { name: o.metadata.name, namespace: o.metadata.namespace, resourceVersion: o.metadata.resourceVersion },
    }),
    pageSize: 2,
    watchTimeoutSeconds: () => 300,
  };
}

const flush = (): Promise<void> => new Promise((r) => setImmediate(r));

describe('listAll', () => {
  test('follows continue tokens, gives items apiVersion and kind, and transforms them', async () => {
    const s = scripted();
    s.pages.push(
      { metadata: { resourceVersion: '10', continue: 'c1' }, items: [obj('a', '1'), obj('b', '2')] },
      { metadata: { resourceVersion: '10' }, items: [{ ...obj('c', '3'), apiVersion: 'y/v1', kind: 'Y' }] },
    );
    const out = await listAll(options(s.client));
    expect(out.resourceVersion).toBe('10');
    expect(out.items.map((i) => [i.metadata.name, i.apiVersion, i.kind, i.metadata.managedFields])).toEqual([
      ['a', 'x/v1', 'Thing', undefined],
      ['b', 'x/v1', 'Thing', undefined],
      ['c', 'y/v1', 'Y', undefined],
    ]);
    expect(s.listQueries).toEqual([
      { limit: 2, labelSelector: 'a=b', continue: undefined },
      { limit: 2, labelSelector: 'a=b', continue: 'c1' },
    ]);
  });
});

describe('JsonListWatch', () => {
  function started() {
    const s = scripted();
    const lw = new JsonListWatch<Obj>(options(s.client));
    const seen: string[] = [];
    const errors: unknown[] = [];
    lw.on('add', (o) => seen.push(`add ${o.metadata.name}@${o.metadata.resourceVersion}`));
    lw.on('update', (o) => seen.push(`update ${o.metadata.name}@${o.metadata.resourceVersion}`));
    lw.on('delete', (o) => seen.push(`delete ${o.metadata.name}`));
    lw.on('error', (e) => errors.push(e));
    return { s, lw, seen, errors };
  }

  test('lists, then watches from the list version with bookmarks; events keep the cache (transformed)', async () => {
    const t = started();
    t.s.pages.push({ metadata: { resourceVersion: '10' }, items: [obj('a', '1')] });
    await t.lw.start();
    expect(t.s.watches[0]!.query).toEqual({
      resourceVersion: '10',
      labelSelector: 'a=b',
      allowWatchBookmarks: true,
      timeoutSeconds: 300,
    });
    const w = t.s.watches[0]!;
    w.onEvent('ADDED', obj('b', '11'));
    w.onEvent('MODIFIED', obj('a', '12'));
    w.onEvent('MODIFIED', obj('a', '12')); // same version: no update
    w.onEvent('DELETED', obj('b', '13'));
    w.onEvent('BOOKMARK', { metadata: { resourceVersion: '14' } });
    expect(t.seen).toEqual(['add a@1', 'add b@11', 'update a@12', 'delete b']);
    expect(t.lw.get('a', 'ns')?.metadata).toEqual({ name: 'a', namespace: 'ns', resourceVersion: '12' });
    expect(t.lw.list().map((o) => o.metadata.name)).toEqual(['a']);
    expect(t.lw.latestResourceVersion()).toBe('14');
  });

  test('the server ending the watch resumes it from the last version, without a list', async () => {
    const t = started();
    t.s.pages.push({ metadata: { resourceVersion: '10' }, items: [] });
    await t.lw.start();
    t.s.watches[0]!.onEvent('ADDED', obj('a', '20'));
    t.s.watches[0]!.onDone();
    await flush();
    expect(t.s.watches).toHaveLength(2);
    expect(t.s.watches[1]!.query.resourceVersion).toBe('20');
    expect(t.s.listQueries).toHaveLength(1);
  });

  test('410 Gone lists again: objects gone meanwhile are deleted, changed ones updated', async () => {
    const t = started();
    t.s.pages.push({ metadata: { resourceVersion: '10' }, items: [obj('a', '1'), obj('b', '2')] });
    await t.lw.start();
    t.s.watches[0]!.onEvent('ERROR', { kind: 'Status', code: 410 });
    t.s.pages.push({ metadata: { resourceVersion: '30' }, items: [obj('a', '25'), obj('c', '26')] });
    t.s.watches[0]!.onDone();
    await flush();
    expect(t.seen).toEqual(['add a@1', 'add b@2', 'delete b', 'update a@25', 'add c@26']);
    expect(t.s.watches[1]!.query.resourceVersion).toBe('30');
    // A 410 status on the watch request itself does the same.
    t.s.pages.push({ metadata: { resourceVersion: '40' }, items: [obj('a', '25'), obj('c', '26')] });
    t.s.watches[1]!.onDone(Object.assign(new Error('gone'), { statusCode: 410 }));
    await flush();
    expect(t.s.watches[2]!.query.resourceVersion).toBe('40');
    expect(t.errors).toEqual([]);
  });

  test('any other failure is reported through error; the cache stays, and a restart resumes from the version', async () => {
    const t = started();
    t.s.pages.push({ metadata: { resourceVersion: '10' }, items: [obj('a', '1')] });
    await t.lw.start();
    const failure = Object.assign(new Error('reset'), { code: 'ECONNRESET' });
    t.s.watches[0]!.onDone(failure);
    expect(t.errors).toEqual([failure]);
    expect(t.lw.get('a', 'ns')).toBeDefined();
    await t.lw.stop();
    await t.lw.start();
    expect(t.s.watches[1]!.query.resourceVersion).toBe('10');
    expect(t.s.listQueries).toHaveLength(1);
  });

  test('a failed list is reported through error', async () => {
    const t = started();
    await t.lw.start();
    expect(t.errors).toHaveLength(1);
    expect(t.s.watches).toHaveLength(0);
  });

  test('after stop, a late event or end of the old watch changes nothing', async () => {
    const t = started();
    t.s.pages.push({ metadata: { resourceVersion: '10' }, items: [] });
    await t.lw.start();
    const old = t.s.watches[0]!;
    await t.lw.stop();
    expect(old.aborted).toBe(true);
    old.onEvent('ADDED', obj('late', '11'));
    old.onDone(new Error('x'));
    await flush();
    expect(t.seen).toEqual([]);
    expect(t.errors).toEqual([]);
    expect(t.s.watches).toHaveLength(1);
  });
});
