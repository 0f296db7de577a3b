import { CallSlots, type WaitingCall } from './concurrency';
import { InboundCalls } from './inbound';
import { microServiceName, microSubjects } from './micro';

/** A waiting call that records what happened to it. */
function waiter(log: string[], name: string): WaitingCall & { done: Promise<string> } {
  let settle!: (what: string) => void;
  const done = new Promise<string>((r) => (settle = r));
  return {
    done,
    start: () => {
      log.push(`${name} started`);
      settle('started');
    },
    refuse: (why) => {
      log.push(`${name} ${why}`);
      settle(why);
    },
  };
}

describe('CallSlots', () => {
  test('counts against the limit and tells when idle', async () => {
    const f = new CallSlots(2, 0);
    expect(f.tryAcquire()).toBe(true);
    expect(f.tryAcquire()).toBe(true);
    expect(f.tryAcquire()).toBe(false);
    expect(f.size).toBe(2);
    const idle = f.idle(5_000);
    f.release();
    f.release();
    await expect(idle).resolves.toBe(true);
    f.tryAcquire();
    await expect(f.idle(10)).resolves.toBe(false);
    f.release();
    await expect(f.idle(10)).resolves.toBe(true);
  });

  test('waiting calls get freed slots first in, first out; full when the queue is, room again when it is empty', () => {
    const log: string[] = [];
    const fulls: boolean[] = [];
    const queued: number[] = [];
    const f = new CallSlots(1, 2, { onFull: (x) => fulls.push(x), onQueued: (n) => queued.push(n) });
    expect(f.tryAcquire()).toBe(true);
    expect(f.full).toBe(false);
    expect(f.enqueue(waiter(log, 'a'), 60_000)).toBe(true);
    expect(f.enqueue(waiter(log, 'b'), 60_000)).toBe(true);
    expect(f.full).toBe(true);
    expect(f.enqueue(waiter(log, 'c'), 60_000)).toBe(false);
    expect(f.size).toBe(3);
    f.release();
    expect(log).toEqual(['a started']);
    expect(f.full).toBe(true); // the queue is not empty yet
    f.release();
    expect(log).toEqual(['a started', 'b started']);
    expect(f.full).toBe(false);
    expect(f.size).toBe(1);
    f.release();
    expect(f.size).toBe(0);
    expect(fulls).toEqual([true, false]);
    expect(queued).toEqual([1, 2, 1, 0]);
  });

  test('with no queue: full while every slot is taken', () => {
    const fulls: boolean[] = [];
    const f = new CallSlots(2, 0, { onFull: (x) => fulls.push(x) });
    f.tryAcquire();
    expect(f.full).toBe(false);
    f.tryAcquire();
    expect(f.full).toBe(true);
    expect(f.enqueue(waiter([], 'a'), 1_000)).toBe(false);
    f.release();
    expect(f.full).toBe(false);
    expect(fulls).toEqual([true, false]);
  });

  test('a waiting call whose deadline passes leaves the queue and never starts; the next one takes its place', async () => {
    const log: string[] = [];
    const f = new CallSlots(1, 2);
    f.tryAcquire();
    const a = waiter(log, 'a');
    f.enqueue(a, 5);
    const b = waiter(log, 'b');
    f.enqueue(b, 60_000);
    await expect(a.done).resolves.toBe('deadline');
    expect(f.queued).toBe(1);
    f.release();
    await expect(b.done).resolves.toBe('started');
    expect(log).toEqual(['a deadline', 'b started']);
    f.release();
    expect(f.size).toBe(0);
  });

  test('refuseWaiting empties the queue; running calls keep their slots', () => {
    const log: string[] = [];
    const f = new CallSlots(1, 3);
    f.tryAcquire();
    for (const n of ['a', 'b', 'c']) f.enqueue(waiter(log, n), 60_000);
    expect(f.full).toBe(true);
    f.refuseWaiting();
    expect(log).toEqual(['a refused', 'b refused', 'c refused']);
    expect([f.queued, f.size, f.full]).toEqual([0, 1, false]);
    f.release();
    expect(f.size).toBe(0);
  });

  test('many expired waiters behind a stuck head are compacted away', async () => {
    const f = new CallSlots(1, 1);
    f.tryAcquire();
    for (let i = 0; i < 50; i++) {
      const w = waiter([], String(i));
      expect(f.enqueue(w, 1)).toBe(true);
      await w.done;
    }
    expect(f.queued).toBe(0);
    const log: string[] = [];
    f.enqueue(waiter(log, 'last'), 60_000);
    f.release();
    expect(log).toEqual(['last started']);
  });
});

test('InboundCalls removes only its own entry', () => {
  const calls = new InboundCalls();
  const a = { deadline: 1 };
  const b = { deadline: 2 };
  calls.add('r', a);
  calls.add('r', b);
  calls.remove('r', a);
  expect(calls.get('r')).toBe(b);
  calls.remove('r', b);
  expect(calls.get('r')).toBeUndefined();
  expect(calls.get(undefined)).toBeUndefined();
});

test('micro names and subjects', () => {
  expect(microServiceName('shop', 'orders')).toBe('fnmesh-shop-orders');
  expect(microSubjects('PING', 'n', 'i')).toEqual(['$SRV.PING', '$SRV.PING.n', '$SRV.PING.n.i']);
});
