import { DEFAULT_OUTLIER_DETECTION, type OutlierDetectionPolicy } from './common';
import { ASK_AGAIN_MS, OutlierDetector, ejectionAllowed } from './outlier';

const policy = (p: Partial<OutlierDetectionPolicy>): OutlierDetectionPolicy => ({ ...DEFAULT_OUTLIER_DETECTION, ...p });

describe('OutlierDetector', () => {
  test('consecutive failures eject; a success in between starts the count again', () => {
    const d = new OutlierDetector(policy({ consecutiveFailures: 3, failureRatio: 0 }), 0);
    expect([d.record(true, 1), d.record(true, 2), d.record(false, 3)]).toEqual([false, false, false]);
    expect([d.record(true, 4), d.record(true, 5), d.record(true, 6)]).toEqual([false, false, true]);
    expect(d.deciding).toBe(true);
    // no second verdict while the replicas are asked
    expect(d.record(true, 7)).toBe(false);
  });

  test('the failure ratio over the window ejects once minCalls calls were seen', () => {
    const d = new OutlierDetector(
      policy({ consecutiveFailures: 0, failureRatio: 0.5, minCalls: 10, windowMs: 1_000 }),
      0,
    );
    // 4 ok, 4 failed alternating: 8 calls, below minCalls
    let verdict = false;
    for (let i = 0; i < 8; i++) verdict = d.record(i % 2 === 0, 10 + i) || verdict;
    expect(verdict).toBe(false);
    expect(d.record(false, 20)).toBe(false); // 9 calls, 4 failed
    expect(d.record(true, 21)).toBe(true); // 10 calls, 5 failed: 50 %
  });

  test('calls older than the window no longer count', () => {
    const d = new OutlierDetector(
      policy({ consecutiveFailures: 0, failureRatio: 0.5, minCalls: 4, windowMs: 1_000 }),
      0,
    );
    for (let i = 0; i < 3; i++) d.record(true, i);
    // two windows later: those failures are gone; 3 ok + 1 failed is 25 %
    for (let i = 0; i < 3; i++) d.record(false, 2_000 + i);
    expect(d.record(true, 2_010)).toBe(false);
  });

  test('off when both thresholds are 0', () => {
    const d = new OutlierDetector(policy({ consecutiveFailures: 0, failureRatio: 0 }), 0);
    expect(d.enabled).toBe(false);
    for (let i = 0; i < 100; i++) expect(d.record(true, i)).toBe(false);
  });

  test('ejections in a row double up to maxEjectionMs; each maxEjectionMs of good service takes one off', () => {
    const d = new OutlierDetector(
      policy({ consecutiveFailures: 1, failureRatio: 0, baseEjectionMs: 100, maxEjectionMs: 1_000 }),
      0,
    );
    const ejectAt = (now: number): number => {
      expect(d.record(true, now)).toBe(true);
      const ms = d.eject(now);
      d.returned(now + ms);
      return ms;
    };
    expect(ejectAt(10)).toBe(100);
    expect(ejectAt(200)).toBe(200);
    expect(ejectAt(500)).toBe(400);
    expect(ejectAt(1_000)).toBe(800);
    expect(ejectAt(1_900)).toBe(1_000);
    expect(ejectAt(3_000)).toBe(1_000);
    // back at 4_000; 2.5 × maxEjectionMs of good service: two ejections forgiven (6 → 4, the next is the 5th)
    expect(ejectAt(6_500)).toBe(1_000);
    d.returned(100_000);
    expect(ejectAt(200_000)).toBe(100); // a long quiet period: back to the first
  });

  test('after returning, the failures before the ejection are forgotten', () => {
    const d = new OutlierDetector(policy({ consecutiveFailures: 3, failureRatio: 0 }), 0);
    d.record(true, 1);
    d.record(true, 2);
    expect(d.record(true, 3)).toBe(true);
    d.eject(3);
    d.returned(10_000);
    expect(d.record(true, 10_001)).toBe(false);
  });

  test('refused by the cap: no verdict again before ASK_AGAIN_MS plus the jitter', () => {
    const d = new OutlierDetector(policy({ consecutiveFailures: 1, failureRatio: 0 }), 0);
    expect(d.record(true, 0)).toBe(true);
    d.refused(0, 100);
    expect(d.deciding).toBe(false);
    expect(d.record(true, ASK_AGAIN_MS + 99)).toBe(false);
    expect(d.record(true, ASK_AGAIN_MS + 100)).toBe(true);
  });
});

describe('ejectionAllowed (maxEjectionPercent over the replicas as they report themselves)', () => {
  const peers = (...states: string[]): Array<{ id: string; state: string }> =>
    states.map((state, i) => ({ id: `r${i}`, state }));

  test('two replicas, 50 %: the first may go, not the second', () => {
    expect(ejectionAllowed('r0', peers('serving', 'serving'), 50)).toBe(true);
    expect(ejectionAllowed('r0', peers('serving', 'ejected'), 50)).toBe(false);
  });
  test('another replica deciding at the same moment counts as ejected', () => {
    expect(ejectionAllowed('r0', peers('ejecting', 'ejecting'), 50)).toBe(false);
  });
  test('a lone replica is never ejected below 100 %; down or overloaded replicas do not count as ejected', () => {
    expect(ejectionAllowed('r0', peers('serving'), 50)).toBe(false);
    expect(ejectionAllowed('r0', [], 99)).toBe(false);
    expect(ejectionAllowed('r0', [], 100)).toBe(true);
    expect(ejectionAllowed('r0', peers('serving', 'function-down', 'overloaded', 'ejected'), 50)).toBe(true);
    expect(ejectionAllowed('r0', peers('serving', 'ejected', 'ejected', 'serving'), 50)).toBe(false);
  });
  test('0 % never ejects; its own answer and duplicates count once', () => {
    expect(ejectionAllowed('r0', peers('serving', 'serving', 'serving'), 0)).toBe(false);
    expect(
      ejectionAllowed(
        'a',
        [
          { id: 'a', state: 'ejecting' },
          { id: 'b', state: 'serving' },
          { id: 'b', state: 'serving' },
        ],
        50,
      ),
    ).toBe(true);
  });
});
