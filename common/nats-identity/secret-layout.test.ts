import { replicaIdentity, GATEWAY_IDENTITY } from './identity';
import {
  CREDS_MOUNT_FILE,
  TRUST_SECRET_KEYS,
  credsFromSecretData,
  credsSecretData,
  credsSecretName,
  trustFromSecretData,
  trustSecretData,
} from './secret-layout';
import { createMeshTrust, meshTrustSeeds } from './trust-chain';
import { mintUser } from './user-credentials';

test('the trust chain round-trips through its Secret', () => {
  const trust = createMeshTrust();
  const data = trustSecretData(meshTrustSeeds(trust));
  expect(Object.keys(data).sort()).toEqual(Object.values(TRUST_SECRET_KEYS).sort());
  const back = trustFromSecretData(data, 'Secret fnmesh/fnmesh-nats-trust');
  expect(back.signingKey.getPublicKey()).toBe(trust.signingKey.getPublicKey());
});

test('a trust Secret missing a key, or with a key of the wrong kind, names the Secret and the key', () => {
  const data = trustSecretData(meshTrustSeeds(createMeshTrust()));
  const { [TRUST_SECRET_KEYS.signingKeySeed]: _dropped, ...partial } = data;
  expect(() => trustFromSecretData(partial, 'Secret fnmesh/t')).toThrow(
    /^Secret fnmesh\/t has no key signing-key\.nk: the trust Secret needs operator\.nk, account\.nk, signing-key\.nk/,
  );
  const swapped = { ...data, [TRUST_SECRET_KEYS.signingKeySeed]: data[TRUST_SECRET_KEYS.operatorSeed]! };
  expect(() => trustFromSecretData(swapped, 'Secret fnmesh/t')).toThrow(
    /the account signing key in Secret fnmesh\/t is an operator seed/,
  );
});

test("a user's credentials Secret: one key, the .creds file, mounted where the sidecar reads it", async () => {
  const user = await mintUser(createMeshTrust(), replicaIdentity('shop', 'orders'), { ttlMs: 3_600_000 });
  const data = credsSecretData(user.creds);
  expect(data).toEqual({ 'nats.creds': user.creds });
  expect(credsFromSecretData(data, 'Secret shop/x').publicKey).toBe(user.publicKey);
  expect(CREDS_MOUNT_FILE).toBe('/var/run/fnmesh/nats/nats.creds');
  expect(() => credsFromSecretData({}, 'Secret shop/x')).toThrow(
    'Secret shop/x has no key nats.creds: delete the Secret to let the operator mint it again',
  );
  expect(() => credsFromSecretData({ 'nats.creds': 'junk' }, 'Secret shop/x')).toThrow(
    /^the key nats\.creds of Secret shop\/x is not a NATS credentials file/,
  );
});

test('Secret names', () => {
  expect(credsSecretName(replicaIdentity('shop', 'orders'))).toBe('fnmesh-service-shop-orders-nats');
  expect(credsSecretName(GATEWAY_IDENTITY)).toBe('fnmesh-gateway-nats');
});
