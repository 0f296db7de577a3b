import { InFlight } from './concurrency';
import { InboundCalls } from './inbound';
import { microServiceName, microSubjects } from './micro';

test('InFlight counts against the limit and tells when idle', async () => {
  const f = new InFlight(2);
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
