import type { CircuitBreakerPolicy } from '../common';
import { CircuitBreaker, CircuitBreakers, type BreakerRef } from './circuit-breaker';

const policy: CircuitBreakerPolicy = { consecutiveFailures: 3, openMs: 500, maxOpenMs: 1500 };

function opened(at: number): CircuitBreaker {
  const b = new CircuitBreaker(policy);
  for (let i = 0; i < 3; i++) {
    expect(b.admit(at)).toBe('pass');
    b.record('no-replica', false, at);
  }
  return b;
}

describe('the circuit breaker of a function', () => {
  it('opens after consecutiveFailures calls in a row that no replica could take', () => {
    const b = new CircuitBreaker(policy);
    expect(b.record('no-replica', false, 0)).toBe(false);
    expect(b.record('no-replica', false, 0)).toBe(false);
    expect(b.state).toBe('closed');
    expect(b.record('no-replica', false, 100)).toBe(true);
    expect(b.snapshot()).toEqual({ state: 'open', failuresInARow: 3, openUntil: 600 });
  });

  it('counts only calls in a row: one a replica took starts the count again, one that says nothing does not', () => {
    const b = new CircuitBreaker(policy);
    b.record('no-replica', false, 0);
    b.record('no-replica', false, 0);
    b.record('taken', false, 0);
    b.record('no-replica', false, 0);
    b.record('neutral', false, 0);
    b.record('no-replica', false, 0);
    expect(b.snapshot()).toEqual({ state: 'closed', failuresInARow: 2 });
  });

  it('refuses calls while open, and says how long until the trial call', () => {
    const b = opened(0);
    expect(b.admit(100)).toBe('refuse');
    expect(b.retryAfterMs(100)).toBe(400);
    expect(b.admit(499)).toBe('refuse');
  });

  it('lets one probe through once openMs passed, refusing the others while it runs', () => {
    const b = opened(0);
    expect(b.admit(500)).toBe('probe');
    expect(b.state).toBe('half-open');
    expect(b.admit(501)).toBe('refuse');
    expect(b.admit(502)).toBe('refuse');
  });

  it('lets another probe through when the first one has run as long as the circuit was open', () => {
    const b = opened(0);
    expect(b.admit(500)).toBe('probe');
    expect(b.admit(999)).toBe('refuse');
    expect(b.admit(1000)).toBe('probe');
    expect(b.admit(1001)).toBe('refuse');
  });

  it('closes when a replica took the probe', () => {
    const b = opened(0);
    expect(b.admit(500)).toBe('probe');
    b.record('taken', true, 510);
    expect(b.snapshot()).toEqual({ state: 'closed', failuresInARow: 0 });
    expect(b.admit(511)).toBe('pass');
  });

  it('reopens for twice as long (up to maxOpenMs) when no replica could take the probe, and starts over once closed', () => {
    const b = opened(0);
    expect(b.admit(500)).toBe('probe');
    expect(b.record('no-replica', true, 500)).toBe(true);
    expect(b.snapshot()).toMatchObject({ state: 'open', openUntil: 1500 });
    expect(b.admit(1499)).toBe('refuse');
    expect(b.admit(1500)).toBe('probe');
    b.record('no-replica', true, 1500);
    expect(b.snapshot()).toMatchObject({ openUntil: 3000 }); // 1500 ms: the cap
    expect(b.admit(3000)).toBe('probe');
    b.record('no-replica', true, 3000);
    expect(b.snapshot()).toMatchObject({ openUntil: 4500 });
    expect(b.admit(4500)).toBe('probe');
    b.record('taken', true, 4500);
    // closed again: the next opening lasts openMs again
    for (let i = 0; i < 3; i++) b.record('no-replica', false, 5000);
    expect(b.snapshot()).toMatchObject({ state: 'open', openUntil: 5500 });
  });

  it('frees the probe slot when the probe says nothing, staying half-open', () => {
    const b = opened(0);
    expect(b.admit(500)).toBe('probe');
    b.record('neutral', true, 500);
    expect(b.state).toBe('half-open');
    expect(b.admit(501)).toBe('probe');
  });

  it('closes when a call admitted before the circuit opened finds a replica', () => {
    const b = opened(0);
    b.record('taken', false, 10);
    expect(b.state).toBe('closed');
  });

  it('never opens with consecutiveFailures 0', () => {
    const b = new CircuitBreaker({ ...policy, consecutiveFailures: 0 });
    for (let i = 0; i < 100; i++) b.record('no-replica', false, 0);
    expect(b.admit(0)).toBe('pass');
  });
});

describe('the breakers of all functions', () => {
  const ref = (p: CircuitBreakerPolicy = policy, fn = 'hello'): BreakerRef => ({
    key: `default/greeter.${fn}`,
    namespace: 'default',
    service: 'greeter',
    function: fn,
    policy: p,
  });

  it('makes a breaker only at the first call no replica could take', () => {
    const breakers = new CircuitBreakers();
    const r = ref();
    breakers.record(r, 'taken', false, 0);
    breakers.record(r, 'neutral', false, 0);
    expect(breakers.find(r)).toBeUndefined();
    expect(breakers.record(r, 'no-replica', false, 0)).toBe(false);
    expect(breakers.find(r)?.failuresInARow).toBe(1);
    expect(breakers.find(ref({ ...policy, consecutiveFailures: 0 }, 'off'))).toBeUndefined();
    breakers.record(ref({ ...policy, consecutiveFailures: 0 }, 'off'), 'no-replica', false, 0);
    expect([...breakers.all()].map((e) => e.ref.key)).toEqual(['default/greeter.hello']);
  });

  it('keeps the state for an equal policy of a rebuilt table, and starts fresh for a changed one', () => {
    const breakers = new CircuitBreakers();
    for (let i = 0; i < 3; i++) breakers.record(ref(), 'no-replica', false, 0);
    expect(breakers.snapshot(ref({ ...policy }))).toMatchObject({ state: 'open', failuresInARow: 3 });
    expect(breakers.snapshot(ref({ ...policy, openMs: 100 }))).toEqual({ state: 'closed', failuresInARow: 0 });
    expect(breakers.find(ref())).toBeUndefined();
  });

  it('drops the breakers of functions no longer routed', () => {
    const breakers = new CircuitBreakers();
    breakers.record(ref(policy, 'a'), 'no-replica', false, 0);
    breakers.record(ref(policy, 'b'), 'no-replica', false, 0);
    breakers.retain(new Set(['default/greeter.b']));
    expect([...breakers.all()].map((e) => e.ref.function)).toEqual(['b']);
  });
});
