import { IdleGc, SHRINK_GAP_MS, exposedGc, idleGcStep } from './idle-gc';

describe('idleGcStep', () => {
  it('collects once the quiet time has passed', () => {
    expect(idleGcStep({ quietMs: 5000, busy: false, idleMs: 5000 })).toEqual({ action: 'collect' });
    expect(idleGcStep({ quietMs: 9000, busy: false, idleMs: 5000 })).toEqual({ action: 'collect' });
  });
  it('waits for the rest of the quiet time after a later call', () => {
    expect(idleGcStep({ quietMs: 1200, busy: false, idleMs: 5000 })).toEqual({ action: 'wait', ms: 3800 });
  });
  it('waits a whole quiet time while calls are in flight', () => {
    expect(idleGcStep({ quietMs: 60_000, busy: true, idleMs: 5000 })).toEqual({ action: 'wait', ms: 5000 });
  });
});

describe('IdleGc', () => {
  let t = 0;
  const now = (): number => t;
  /** Moves the clock and the timers together. */
  const advance = (ms: number): void => {
    t += ms;
    jest.advanceTimersByTime(ms);
  };
  beforeEach(() => {
    t = 0;
    jest.useFakeTimers();
  });
  afterEach(() => jest.useRealTimers());

  it('collects idleMs after the last call and once more SHRINK_GAP_MS later, then not until another call', () => {
    let collected = 0;
    const gc = new IdleGc({ idleMs: 1000, busy: () => false, collect: () => collected++, now });
    gc.touch();
    advance(600);
    gc.touch(); // the quiet time starts again
    advance(400);
    expect(collected).toBe(0);
    advance(599);
    expect(collected).toBe(0);
    advance(1);
    expect(collected).toBe(1);
    advance(SHRINK_GAP_MS - 1);
    expect(collected).toBe(1);
    advance(1);
    expect(collected).toBe(2);
    advance(60_000);
    expect(collected).toBe(2);
    expect(jest.getTimerCount()).toBe(0);
    gc.touch();
    advance(1000);
    expect(collected).toBe(3);
    gc.stop();
  });

  it('starts over when a call comes between the two collections', () => {
    let collected = 0;
    const gc = new IdleGc({ idleMs: 1000, busy: () => false, collect: () => collected++, now });
    gc.touch();
    advance(1000);
    expect(collected).toBe(1);
    advance(SHRINK_GAP_MS - 500);
    gc.touch();
    advance(500); // the second collection's timer: only 500 ms quiet, so it waits the rest
    expect(collected).toBe(1);
    advance(500);
    expect(collected).toBe(2);
    advance(SHRINK_GAP_MS);
    expect(collected).toBe(3);
    advance(60_000);
    expect(collected).toBe(3);
    gc.stop();
  });

  it('does not collect while calls are in flight', () => {
    let collected = 0;
    let busy = true;
    const gc = new IdleGc({ idleMs: 1000, busy: () => busy, collect: () => collected++, now });
    gc.touch();
    advance(5000);
    expect(collected).toBe(0);
    busy = false;
    advance(1000);
    expect(collected).toBe(1);
    advance(SHRINK_GAP_MS);
    expect(collected).toBe(2);
    gc.stop();
  });

  it('runs no timer before the first call, and none after stop', () => {
    let collected = 0;
    const gc = new IdleGc({ idleMs: 1000, busy: () => false, collect: () => collected++, now });
    expect(jest.getTimerCount()).toBe(0);
    gc.touch();
    gc.stop();
    advance(5000);
    expect(collected).toBe(0);
    expect(jest.getTimerCount()).toBe(0);
  });

  it('is off with idleMs 0', () => {
    let collected = 0;
    const gc = new IdleGc({ idleMs: 0, busy: () => false, collect: () => collected++, now });
    gc.touch();
    advance(60_000);
    expect(collected).toBe(0);
    expect(jest.getTimerCount()).toBe(0);
  });
});

describe('exposedGc', () => {
  it('gives a collector that frees garbage, without leaving a global gc behind', () => {
    const gc = exposedGc();
    expect(typeof gc).toBe('function');
    expect((globalThis as { gc?: unknown }).gc).toBeUndefined();
    let garbage: object[] | undefined = Array.from({ length: 200_000 }, (_, i) => ({ i }));
    const before = process.memoryUsage().heapUsed;
    garbage = undefined;
    gc();
    expect(garbage).toBeUndefined();
    expect(process.memoryUsage().heapUsed).toBeLessThan(before);
  });
});
