/** Permission decisions as nats-server makes them. */
import { Permissions } from './permissions';

describe('Permissions', () => {
  it('publishes within allow and outside deny', () => {
    const p = new Permissions({ publish: { allow: ['a.>'], deny: ['a.secret'] } });
    expect([p.canPublish('a.b'), p.canPublish('a.secret'), p.canPublish('b')]).toEqual([true, false, false]);
  });

  it('turns off the blanket publish allow when responses are allowed, with nats-server defaults', () => {
    const p = new Permissions({ responses: { max: 0, ttlMs: 0 } });
    expect(p.restrictsPublish).toBe(true);
    expect(p.canPublish('anything')).toBe(false);
    expect(p.responses).toEqual({ max: 1, ttlMs: 120_000 });
  });

  it('restricts a subject to a queue group when an entry names one', () => {
    const p = new Permissions({ subscribe: { allow: ['svc.* q1', 'free.>', 'wild.* q.*'] } });
    expect(p.canSubscribe('svc.a', undefined)).toBe(false);
    expect(p.canSubscribe('svc.a', 'q1')).toBe(true);
    expect(p.canSubscribe('svc.a', 'q2')).toBe(false);
    expect(p.canSubscribe('free.x', 'any')).toBe(true);
    expect(p.canSubscribe('wild.a', 'q.b')).toBe(true);
    expect(p.canSubscribe('wild.a', 'r.b')).toBe(false);
  });

  it('denies a queue group, or a subject, and takes wildcards in subscriptions literally', () => {
    const p = new Permissions({ subscribe: { deny: ['x.* bad', 'y.>'] } });
    expect(p.canSubscribe('x.a', 'bad')).toBe(false);
    expect(p.canSubscribe('x.a', 'good')).toBe(true);
    expect(p.canSubscribe('y.*', undefined)).toBe(false);
    expect(p.canSubscribe('*.a', undefined)).toBe(true);
  });

  it('filters on delivery only wildcard subscriptions that overlap a deny entry', () => {
    const p = new Permissions({ subscribe: { allow: ['>'], deny: ['app.secret.>'] } });
    expect(p.needsDeliveryFilter('app.>')).toBe(true);
    expect(p.needsDeliveryFilter('app.*.x')).toBe(true);
    expect(p.needsDeliveryFilter('app.open.*')).toBe(false);
    expect(p.needsDeliveryFilter('app.open.x')).toBe(false);
    expect([p.canReceive('app.secret.k'), p.canReceive('app.open.k')]).toEqual([false, true]);
  });
});
