import { HEALTH_FAST_MS, HEALTH_SLOW_MS, Membership } from './membership';

const fresh = (): Membership => new Membership('the function has not answered GET /healthz yet');

describe('Membership', () => {
  test('starts out of the queue group, not ready, checking health fast; joins on the first passing check', () => {
    const m = fresh();
    expect([m.joined, m.state(), m.refusing]).toEqual([false, 'starting', 'unhealthy']);
    expect(m.readiness()).toEqual({ ready: false, reason: 'the function has not answered GET /healthz yet' });
    expect(m.nextHealthCheckMs(0)).toBe(HEALTH_FAST_MS);
    m.healthPassed(0);
    expect([m.joined, m.state(), m.refusing]).toEqual([true, 'serving', undefined]);
    expect(m.readiness()).toEqual({ ready: true });
    expect(m.nextHealthCheckMs(0)).toBe(HEALTH_SLOW_MS);
  });

  test.each([
    ['down', 'function-down'],
    ['unhealthy', 'unhealthy'],
  ] as const)(
    'function %s: leaves at once, not ready with the reason, checks fast, rejoins on a passing check',
    (health, reason) => {
      const m = fresh();
      m.healthPassed(0);
      m.functionFailed(health, 'connect ECONNREFUSED');
      expect([m.joined, m.state(), m.refusing]).toEqual([false, reason, reason]);
      expect(m.readiness()).toEqual({ ready: false, reason: 'connect ECONNREFUSED' });
      expect(m.nextHealthCheckMs(10)).toBe(HEALTH_FAST_MS);
      m.healthPassed(20);
      expect([m.joined, m.state()]).toEqual([true, 'serving']);
    },
  );

  test('ejected: out until the ejection is over and a check passes after it; not ready meanwhile', () => {
    const m = fresh();
    m.healthPassed(0);
    m.eject(1_000, 5_000);
    expect([m.joined, m.state(), m.refusing, m.ejected]).toEqual([false, 'ejected', 'ejected', true]);
    expect(m.readiness().ready).toBe(false);
    expect(m.nextHealthCheckMs(1_000)).toBe(HEALTH_SLOW_MS);
    expect(m.nextHealthCheckMs(5_980)).toBe(HEALTH_FAST_MS);
    m.healthPassed(5_999); // passing, but the ejection is not over
    expect(m.joined).toBe(false);
    m.healthPassed(6_000);
    expect([m.joined, m.state(), m.ejected]).toEqual([true, 'serving', false]);
  });

  test('a function down while ejected: stays out after the ejection until a check passes', () => {
    const m = fresh();
    m.healthPassed(0);
    m.eject(0, 100);
    m.functionFailed('down', 'refused');
    expect(m.state()).toBe('function-down');
    m.healthPassed(50);
    expect(m.state()).toBe('ejected');
    m.healthPassed(100);
    expect(m.state()).toBe('serving');
  });

  test('overloaded: out of the queue group but still ready; back when the queue has room', () => {
    const m = fresh();
    m.healthPassed(0);
    m.setOverloaded(true);
    // a call still arriving is taken when there is room
    expect([m.joined, m.state(), m.out, m.refusing]).toEqual([false, 'overloaded', 'overloaded', undefined]);
    expect(m.readiness()).toEqual({ ready: true });
    m.setOverloaded(false);
    expect(m.joined).toBe(true);
  });

  test('draining wins over everything and never ends; no more health checks', () => {
    const m = fresh();
    m.healthPassed(0);
    m.setOverloaded(true);
    m.drain();
    // the calls already on their way still run
    expect([m.joined, m.state(), m.out, m.refusing]).toEqual([false, 'draining', 'draining', undefined]);
    expect(m.readiness()).toEqual({ ready: false, reason: 'the sidecar is draining: it takes no new calls' });
    m.healthPassed(1);
    m.setOverloaded(false);
    expect(m.joined).toBe(false);
    expect(m.nextHealthCheckMs(1)).toBeUndefined();
    const early = fresh();
    early.drain();
    expect(early.state()).toBe('draining');
    m.functionFailed('down', 'refused');
    expect([m.state(), m.refusing]).toEqual(['draining', 'function-down']);
  });
});
