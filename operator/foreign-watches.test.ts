import type { WatchEventHandler, WatchHandle } from '../common/kube-client';
import { ForeignDeploymentWatches } from './foreign-watches';

function setup(max = 2) {
  const watches: Array<{
    path: string;
    query: Record<string, unknown>;
    onEvent: WatchEventHandler;
    onDone: (err?: unknown) => void;
    aborted: boolean;
  }> = [];
  const queued: string[] = [];
  const later: Array<[string, number]> = [];
  let now = 0;
  const fw = new ForeignDeploymentWatches({
    client: {
      async watch(path, query, onEvent, onDone): Promise<WatchHandle> {
        const w = { path, query, onEvent, onDone, aborted: false };
        watches.push(w);
        return { abort: () => void (w.aborted = true) };
      },
    },
    enqueue: (k) => queued.push(k),
    enqueueAfter: (k, ms) => later.push([k, ms]),
    max,
    minLifetimeMs: 5000,
    now: () => now,
  });
  return { fw, watches, queued, later, setNow: (n: number) => (now = n) };
}

const flush = (): Promise<void> => new Promise((r) => setImmediate(r));

describe('ForeignDeploymentWatches', () => {
  test('watches the one Deployment by name from the read version; an event queues the key', async () => {
    const t = setup();
    expect(t.fw.watch('ns/svc', 'ns', 'svc', '42')).toBe(true);
    expect(t.fw.watch('ns/svc', 'ns', 'svc', '43')).toBe(true); // already watching
    await flush();
    expect(t.watches).toHaveLength(1);
    expect(t.watches[0]!.path).toBe('/apis/apps/v1/namespaces/ns/deployments');
    expect(t.watches[0]!.query).toMatchObject({ fieldSelector: 'metadata.name=svc', resourceVersion: '42' });
    t.watches[0]!.onEvent('BOOKMARK', {});
    t.watches[0]!.onEvent('DELETED', {});
    expect(t.queued).toEqual(['ns/svc']);
  });

  test('at most max watches', () => {
    const t = setup(1);
    expect(t.fw.watch('ns/a', 'ns', 'a', '1')).toBe(true);
    expect(t.fw.watch('ns/b', 'ns', 'b', '1')).toBe(false);
    t.fw.release('ns/a');
    expect(t.fw.watch('ns/b', 'ns', 'b', '1')).toBe(true);
  });

  test('release aborts the watch; its later end queues nothing', async () => {
    const t = setup();
    t.fw.watch('ns/a', 'ns', 'a', '1');
    await flush();
    t.fw.release('ns/a');
    expect(t.watches[0]!.aborted).toBe(true);
    t.watches[0]!.onDone();
    expect(t.queued).toEqual([]);
    expect(t.fw.size()).toBe(0);
  });

  test('a watch that ends queues its key (the reconcile reads and watches anew); one that ends early, only after the minimum lifetime', async () => {
    const t = setup();
    t.fw.watch('ns/a', 'ns', 'a', '1');
    await flush();
    t.setNow(1000);
    t.watches[0]!.onDone(new Error('refused'));
    expect(t.later).toEqual([['ns/a', 4000]]);
    expect(t.fw.watching('ns/a')).toBe(false);
    t.fw.watch('ns/a', 'ns', 'a', '2');
    await flush();
    t.setNow(700_000);
    t.watches[1]!.onDone();
    expect(t.queued).toEqual(['ns/a']);
  });

  test('stop releases every watch', async () => {
    const t = setup();
    t.fw.watch('ns/a', 'ns', 'a', '1');
    t.fw.watch('ns/b', 'ns', 'b', '1');
    await flush();
    t.fw.stop();
    expect(t.watches.every((w) => w.aborted)).toBe(true);
  });
});
