import { ResilientInformer, type InformerLike } from './kube-informer';

interface Obj {
  metadata: { name: string; namespace: string };
}

/** A scripted stand-in for the list-watch: the restart logic is what is under test here. */
class ScriptedInformer implements InformerLike<Obj> {
  starts = 0;
  stops = 0;
  objects: Obj[] = [];
  /** Per start: undefined succeeds; an error is reported through 'error' during start (a failed list). */
  script: Array<unknown> = [];
  private readonly handlers: Record<string, Array<(x: never) => void>> = { add: [], update: [], delete: [], error: [] };

  on(verb: string, cb: (x: never) => void): void {
    this.handlers[verb]!.push(cb);
  }
  async start(): Promise<void> {
    const failure = this.script[this.starts++];
    if (failure !== undefined) this.emit('error', failure);
  }
  async stop(): Promise<void> {
    this.stops++;
  }
  list(): ReadonlyArray<Obj> {
    return this.objects;
  }
  get(name: string, namespace?: string): Obj | undefined {
    return this.objects.find((o) => o.metadata.name === name && o.metadata.namespace === namespace);
  }
  emit(verb: string, arg: unknown): void {
    for (const cb of this.handlers[verb]!) cb(arg as never);
  }
}

const obj = (name: string): Obj => ({ metadata: { name, namespace: 'ns' } });

/** Runs pending microtasks (promise continuations) under fake timers. */
async function settle(): Promise<void> {
  for (let i = 0; i < 10; i++) await Promise.resolve();
}

describe('ResilientInformer', () => {
  let fake: ScriptedInformer;
  let informer: ResilientInformer<Obj> | undefined;
  const events: string[] = [];

  beforeEach(() => {
    jest.useFakeTimers();
    fake = new ScriptedInformer();
    events.length = 0;
  });
  afterEach(async () => {
    await informer?.stop();
    informer = undefined;
    jest.useRealTimers();
  });

  function make(options: { resyncMs?: number; stableAfterMs?: number } = {}) {
    let made = 0;
    informer = new ResilientInformer<Obj>({
      resource: 'things',
      factory: () => {
        made++;
        return fake;
      },
      handlers: {
        add: (o) => events.push(`add ${o.metadata.name}`),
        update: (o) => events.push(`update ${o.metadata.name}`),
        delete: (o) => events.push(`delete ${o.metadata.name}`),
      },
      resyncMs: options.resyncMs ?? 0,
      initialBackoffMs: 100,
      maxBackoffMs: 800,
      stableAfterMs: options.stableAfterMs ?? 60_000,
    });
    return { informer, made: () => made };
  }

  test('synced after a successful start; list and get read the cache; events reach the handlers', async () => {
    const { informer: i } = make();
    fake.objects = [obj('a')];
    await i.start();
    expect(i.hasSynced()).toBe(true);
    expect(i.list()).toEqual([obj('a')]);
    expect(i.get('ns', 'a')).toEqual(obj('a'));
    expect(i.get('other', 'a')).toBeUndefined();
    fake.emit('add', obj('b'));
    fake.emit('update', obj('b'));
    fake.emit('delete', obj('b'));
    expect(events).toEqual(['add b', 'update b', 'delete b']);
  });

  test('a failed first list is not synced, and is retried after the back-off', async () => {
    const { informer: i } = make();
    fake.script = [new Error('connect ECONNREFUSED')];
    await i.start();
    expect(i.hasSynced()).toBe(false);
    expect(fake.starts).toBe(1);
    jest.advanceTimersByTime(99);
    await settle();
    expect(fake.starts).toBe(1);
    jest.advanceTimersByTime(1);
    await settle();
    expect(fake.starts).toBe(2);
    expect(i.hasSynced()).toBe(true);
  });

  test('restarts after any error with exponential back-off up to the cap, reusing one informer (its cache)', async () => {
    const { informer: i, made } = make();
    const err = Object.assign(new Error('Forbidden'), { statusCode: 403 });
    fake.script = [undefined, err, err, err, err, err, undefined];
    await i.start();
    const delays: number[] = [];
    for (let n = 0; n < 6; n++) {
      fake.emit('error', err); // only the first of these matters until the restart happens
      const before = fake.starts;
      let waited = 0;
      while (fake.starts === before && waited < 10_000) {
        jest.advanceTimersByTime(50);
        waited += 50;
        await settle();
      }
      delays.push(waited);
    }
    // Errors while starting count too: 1st watch error, then failed restarts.
    expect(delays).toEqual([100, 200, 400, 800, 800, 800]);
    expect(made()).toBe(1);
    expect(fake.stops).toBe(6);
    expect(i.hasSynced()).toBe(true);
  });

  test('one restart per error burst', async () => {
    const { informer: i } = make();
    await i.start();
    fake.emit('error', new Error('a'));
    fake.emit('error', new Error('b'));
    fake.emit('error', new Error('c'));
    jest.advanceTimersByTime(100);
    await settle();
    expect(fake.starts).toBe(2);
    jest.advanceTimersByTime(10_000);
    await settle();
    expect(fake.starts).toBe(2);
  });

  test('running stably resets the back-off', async () => {
    const { informer: i } = make({ stableAfterMs: 1000 });
    await i.start();
    fake.emit('error', new Error('a'));
    jest.advanceTimersByTime(100);
    await settle();
    fake.emit('error', new Error('b'));
    expect(i.failureCount()).toBe(2);
    jest.advanceTimersByTime(200);
    await settle();
    expect(fake.starts).toBe(3);
    jest.advanceTimersByTime(5000); // runs without an error for longer than stableAfterMs
    fake.emit('error', new Error('c'));
    expect(i.failureCount()).toBe(1);
  });

  test('resync calls update for every cached object, periodically', async () => {
    const { informer: i } = make({ resyncMs: 1000 });
    fake.objects = [obj('a'), obj('b')];
    await i.start();
    jest.advanceTimersByTime(999);
    expect(events).toEqual([]);
    jest.advanceTimersByTime(1);
    expect(events).toEqual(['update a', 'update b']);
    jest.advanceTimersByTime(1000);
    expect(events).toHaveLength(4);
  });

  test('no resync before the first successful list', async () => {
    const { informer: i } = make({ resyncMs: 100 });
    fake.script = [new Error('down'), new Error('down')];
    fake.objects = [obj('a')];
    await i.start();
    jest.advanceTimersByTime(150);
    await settle();
    expect(events).toEqual([]);
  });

  test('a throwing handler is contained', async () => {
    informer = new ResilientInformer<Obj>({
      resource: 'things',
      factory: () => fake,
      handlers: {
        add: () => {
          throw new Error('bug');
        },
      },
      resyncMs: 0,
    });
    await informer.start();
    expect(() => fake.emit('add', obj('a'))).not.toThrow();
  });

  test('stop stops the informer, cancels a pending restart and the resync', async () => {
    const { informer: i } = make({ resyncMs: 100 });
    await i.start();
    fake.emit('error', new Error('x'));
    await i.stop();
    expect(fake.stops).toBe(1);
    expect(jest.getTimerCount()).toBe(0);
    fake.emit('error', new Error('after stop'));
    expect(jest.getTimerCount()).toBe(0);
  });
});
