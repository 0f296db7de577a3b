import { DEFAULT_BACKOFF, delayFor, onCrash, type BackoffPolicy } from './backoff';

describe('restart back-off', () => {
  const policy: BackoffPolicy = { initialMs: 200, maxMs: 10_000, resetAfterMs: 30_000, crashLoopAfter: 5 };

  it('doubles from 200 ms and caps at 10 s', () => {
    expect([1, 2, 3, 4, 5, 6, 7, 8].map((n) => delayFor(n, policy))).toEqual([
      200, 400, 800, 1600, 3200, 6400, 10_000, 10_000,
    ]);
    expect(delayFor(0, policy)).toBe(0);
    expect(delayFor(5000, policy)).toBe(10_000);
  });

  it('counts consecutive quick crashes and reports a crash loop', () => {
    let state = { consecutiveCrashes: 0 };
    const delays: number[] = [];
    const loops: boolean[] = [];
    for (let i = 0; i < 6; i++) {
      const d = onCrash(state, 50, policy);
      state = d.state;
      delays.push(d.delayMs);
      loops.push(d.crashLoop);
    }
    expect(delays).toEqual([200, 400, 800, 1600, 3200, 6400]);
    expect(loops).toEqual([false, false, false, false, true, true]);
  });

  it('starts again at the initial delay after a run of at least resetAfterMs', () => {
    const after = onCrash({ consecutiveCrashes: 7 }, 30_000, policy);
    expect(after.state.consecutiveCrashes).toBe(1);
    expect(after.delayMs).toBe(200);
    expect(after.crashLoop).toBe(false);
    expect(onCrash({ consecutiveCrashes: 7 }, 29_999, policy).delayMs).toBe(10_000);
  });

  it('has the documented defaults', () => {
    expect(DEFAULT_BACKOFF).toEqual({ initialMs: 200, maxMs: 10_000, resetAfterMs: 30_000, crashLoopAfter: 5 });
  });
});
