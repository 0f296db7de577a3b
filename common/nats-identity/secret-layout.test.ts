import { replicaIdentity, GATEWAY_IDENTITY } from './identity';
import {
  CREDS_MOUNT_FILE,
  TRUST_SECRET_KEYS,
  credsFromSecretData,
  credsSecretData,
  credsSecretName,
  missingSystemAccountError,
  trustFromSecretData,
  trustSecretData,
  trustSecretUpgrade,
} from './secret-layout';
import { createMeshTrust, meshTrustSeeds, seedProblem } from './trust-chain';
import { mintUser } from './user-credentials';

test('the trust chain round-trips through its Secret', () => {
  const trust = createMeshTrust();
  const data = trustSecretData(meshTrustSeeds(trust));
  expect(Object.keys(data).sort()).toEqual(Object.values(TRUST_SECRET_KEYS).sort());
  const back = trustFromSecretData(data, 'Secret fnmesh/fnmesh-nats-trust');
  expect(back.signingKey.getPublicKey()).toBe(trust.signingKey.getPublicKey());
  expect(back.systemAccount.getPublicKey()).toBe(trust.systemAccount.getPublicKey());
  expect(data['system-account.nk']).toBe(meshTrustSeeds(trust).systemAccount);
});

test("a trust Secret of an older operator gets a system account seed, once; a user's named one gets the fix", () => {
  const data = trustSecretData(meshTrustSeeds(createMeshTrust()));
  expect(trustSecretUpgrade(data)).toBeUndefined();
  const { [TRUST_SECRET_KEYS.systemAccountSeed]: _dropped, ...old } = data;
  const added = trustSecretUpgrade(old)!;
  expect(Object.keys(added)).toEqual(['system-account.nk']);
  expect(seedProblem(added['system-account.nk']!, 'account')).toBeUndefined();
  expect(trustSecretUpgrade({ ...old, ...added })).toBeUndefined();
  expect(trustSecretUpgrade({ ...old, 'system-account.nk': ' \n' })).toBeDefined();
  expect(() => trustFromSecretData(old, 'Secret fnmesh/t')).toThrow(/^Secret fnmesh\/t has no key system-account\.nk/);
  expect(missingSystemAccountError('Secret fnmesh/mine', 'fnmesh', 'mine').message).toBe(
    'Secret fnmesh/mine has no key system-account.nk: the trust chain needs a system account (nats-server starts JetStream only with one), and the operator never writes a trust Secret you name; add a new account seed (SA…, from `nk -gen account` or `nsc generate nkey --account`) under that key: kubectl -n fnmesh patch secret mine -p \'{"stringData":{"system-account.nk":"SA…"}}\'',
  );
});

test('a trust Secret missing a key, or with a key of the wrong kind, names the Secret and the key', () => {
  const data = trustSecretData(meshTrustSeeds(createMeshTrust()));
  const { [TRUST_SECRET_KEYS.signingKeySeed]: _dropped, ...partial } = data;
  expect(() => trustFromSecretData(partial, 'Secret fnmesh/t')).toThrow(
    /^Secret fnmesh\/t has no key signing-key\.nk: the trust Secret needs operator\.nk, account\.nk, signing-key\.nk, system-account\.nk/,
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
