import { WorkQueue } from './workqueue';

/** Resolves with what get() gives, or 'pending' when it does not resolve within the current microtasks. */
async function poll(p: Promise<string | undefined>): Promise<string | undefined | 'pending'> {
  return Promise.race([p, new Promise<'pending'>((resolve) => setImmediate(() => resolve('pending')))]);
}

describe('WorkQueue', () => {
  afterEach(() => jest.useRealTimers());

  test('hands keys out in the order they were added', async () => {
    const q = new WorkQueue();
    q.add('a');
    q.add('b');
    expect(await q.get()).toBe('a');
    expect(await q.get()).toBe('b');
  });

  test('a key added twice while waiting is processed once', async () => {
    const q = new WorkQueue();
    q.add('a');
    q.add('b');
    q.add('a');
    expect(q.len()).toBe(2);
    expect(await q.get()).toBe('a');
    expect(await q.get()).toBe('b');
    expect(await poll(q.get())).toBe('pending');
  });

  test('a key being processed is not handed out again until done; added meanwhile, it comes back once after done', async () => {
    const q = new WorkQueue();
    q.add('a');
    expect(await q.get()).toBe('a');
    q.add('a');
    q.add('a');
    expect(q.len()).toBe(0);
    const next = q.get();
    expect(await poll(next)).toBe('pending');
    q.done('a');
    expect(await next).toBe('a');
    q.done('a');
    expect(await poll(q.get())).toBe('pending');
  });

  test('done without a re-add does not bring the key back', async () => {
    const q = new WorkQueue();
    q.add('a');
    await q.get();
    q.done('a');
    expect(q.len()).toBe(0);
    expect(q.inProgress()).toBe(0);
  });

  test('a waiting get resolves when a key is added', async () => {
    const q = new WorkQueue();
    const waiting = q.get();
    q.add('x');
    expect(await waiting).toBe('x');
    expect(q.inProgress()).toBe(1);
  });

  test('two workers never hold the same key', async () => {
    const q = new WorkQueue();
    const w1 = q.get();
    const w2 = q.get();
    q.add('a');
    q.add('a');
    expect(await w1).toBe('a');
    expect(await poll(w2)).toBe('pending');
    q.add('b');
    expect(await w2).toBe('b');
  });

  test('back-off doubles from 5 ms per key up to the cap, and forget resets it', () => {
    const q = new WorkQueue({ maxDelayMs: 1000 });
    const delays: number[] = [];
    for (let i = 0; i < 12; i++) {
      delays.push(q.nextDelayMs('a'));
      q.addRateLimited('a');
    }
    expect(delays).toEqual([5, 10, 20, 40, 80, 160, 320, 640, 1000, 1000, 1000, 1000]);
    expect(q.numRequeues('a')).toBe(12);
    expect(q.nextDelayMs('b')).toBe(5);
    q.forget('a');
    expect(q.nextDelayMs('a')).toBe(5);
    expect(q.numRequeues('a')).toBe(0);
    q.shutdown();
  });

  test('the default cap is 5 minutes, and many failures do not overflow', () => {
    const q = new WorkQueue();
    for (let i = 0; i < 2000; i++) q.addRateLimited('a');
    expect(q.nextDelayMs('a')).toBe(300_000);
    q.shutdown();
  });

  test('addRateLimited adds the key after its back-off', async () => {
    jest.useFakeTimers();
    const q = new WorkQueue();
    q.addRateLimited('a');
    q.addRateLimited('a'); // 10 ms; the earlier 5 ms add stands
    expect(q.len()).toBe(0);
    jest.advanceTimersByTime(4);
    expect(q.len()).toBe(0);
    jest.advanceTimersByTime(1);
    expect(q.len()).toBe(1);
    expect(await q.get()).toBe('a');
  });

  test('addRateLimited honours a minimum delay (Retry-After)', () => {
    jest.useFakeTimers();
    const q = new WorkQueue();
    q.addRateLimited('a', 3000);
    jest.advanceTimersByTime(2999);
    expect(q.len()).toBe(0);
    jest.advanceTimersByTime(1);
    expect(q.len()).toBe(1);
  });

  test('addAfter: keys come in the order their delays end, and the earliest delay of a key wins', async () => {
    jest.useFakeTimers();
    const q = new WorkQueue();
    q.addAfter('slow', 300);
    q.addAfter('fast', 100);
    q.addAfter('mid', 200);
    q.addAfter('fast', 250); // later than its pending 100 ms: ignored
    q.addAfter('slow', 150); // earlier than its pending 300 ms: moves up
    jest.advanceTimersByTime(100);
    expect(q.len()).toBe(1);
    jest.advanceTimersByTime(200);
    expect(q.len()).toBe(3);
    expect([await q.get(), await q.get(), await q.get()]).toEqual(['fast', 'slow', 'mid']);
    jest.advanceTimersByTime(1000);
    expect(q.len()).toBe(0);
  });

  test('addAfter with no delay adds at once', () => {
    const q = new WorkQueue();
    q.addAfter('a', 0);
    expect(q.len()).toBe(1);
  });

  test('a delayed key that comes due while it is processed is queued after done', async () => {
    jest.useFakeTimers();
    const q = new WorkQueue();
    q.add('a');
    expect(await q.get()).toBe('a');
    q.addAfter('a', 10);
    jest.advanceTimersByTime(10);
    expect(q.len()).toBe(0);
    q.done('a');
    expect(q.len()).toBe(1);
  });

  test('shutdown: waiting and later gets resolve undefined; adds and delayed adds are dropped', async () => {
    jest.useFakeTimers();
    const q = new WorkQueue();
    const waiting = q.get();
    q.addAfter('later', 100);
    q.shutdown();
    expect(await waiting).toBeUndefined();
    q.add('a');
    expect(await q.get()).toBeUndefined();
    jest.advanceTimersByTime(1000);
    expect(q.len()).toBe(0);
    expect(jest.getTimerCount()).toBe(0);
    expect(q.isShutdown()).toBe(true);
  });

  test('metrics hooks see depth, adds, retries and durations', async () => {
    jest.useFakeTimers();
    const seen = { depth: [] as number[], adds: 0, retries: 0, work: [] as number[], wait: [] as number[] };
    const q = new WorkQueue({
      metrics: {
        depth: (n) => seen.depth.push(n),
        add: () => seen.adds++,
        retry: () => seen.retries++,
        workDuration: (s) => seen.work.push(s),
        queueDuration: (s) => seen.wait.push(s),
      },
    });
    q.add('a');
    q.add('b');
    q.add('a');
    jest.advanceTimersByTime(50);
    expect(await q.get()).toBe('a');
    jest.advanceTimersByTime(250);
    q.done('a');
    q.addRateLimited('a');
    expect(seen.adds).toBe(3);
    expect(seen.retries).toBe(1);
    expect(seen.depth).toEqual([1, 2, 1]);
    expect(seen.wait).toEqual([0.05]);
    expect(seen.work).toEqual([0.25]);
    q.shutdown();
  });
});
