import { GATEWAY_IDENTITY, inboxPrefix, natsUserName, replicaIdentity } from './identity';
import { DEFAULT_RESPONSE_TTL_MS, permissionsFor } from './permissions';

test("a replica: its calls in its queue group, its own internal subjects, its own service's PING, its inbox, its discovery subjects", () => {
  expect(permissionsFor(replicaIdentity('shop', 'orders'), { responseTtlMs: 90_000 })).toEqual({
    publish: ['fnmesh.gw.shop.orders.>', '$SRV.PING.fnmesh-shop-orders'],
    subscribe: [
      'fnmesh.call.shop.orders.* fnmesh.shop.orders',
      '_INBOX.fnmesh.svc.shop.orders.>',
      '$SRV.PING',
      '$SRV.PING.fnmesh-shop-orders',
      '$SRV.PING.fnmesh-shop-orders.*',
      '$SRV.INFO',
      '$SRV.INFO.fnmesh-shop-orders',
      '$SRV.INFO.fnmesh-shop-orders.*',
      '$SRV.STATS',
      '$SRV.STATS.fnmesh-shop-orders',
      '$SRV.STATS.fnmesh-shop-orders.*',
    ],
    responses: { max: 1, ttlMs: 90_000 },
  });
});

test("the gateway: publishes calls and services' PINGs, takes internal calls in the gateways group, and its inbox", () => {
  expect(permissionsFor(GATEWAY_IDENTITY)).toEqual({
    publish: ['fnmesh.call.>', '$SRV.PING.*'],
    subscribe: ['fnmesh.gw.> fnmesh.gateway', '_INBOX.fnmesh.gateway.>'],
    responses: { max: 1, ttlMs: DEFAULT_RESPONSE_TTL_MS },
  });
});

test('an observer only asks for discovery and never answers', () => {
  expect(permissionsFor({ kind: 'observer' })).toEqual({
    publish: ['$SRV.>'],
    subscribe: ['_INBOX.fnmesh.observer.>'],
  });
});

test('inbox prefixes of different identities never cover each other', () => {
  const prefixes = [
    inboxPrefix(GATEWAY_IDENTITY),
    inboxPrefix({ kind: 'observer' }),
    inboxPrefix(replicaIdentity('a', 'b')),
    inboxPrefix(replicaIdentity('a', 'bc')),
    inboxPrefix(replicaIdentity('ab', 'c')),
    inboxPrefix(replicaIdentity('gateway', 'x')),
  ];
  for (const p of prefixes) for (const q of prefixes) if (p !== q) expect(`${q}.`.startsWith(`${p}.`)).toBe(false);
});

test('user names say who connects', () => {
  expect(natsUserName(GATEWAY_IDENTITY)).toBe('fnmesh-gateway');
  expect(natsUserName(replicaIdentity('shop', 'orders'))).toBe('fnmesh-service-shop-orders');
});
