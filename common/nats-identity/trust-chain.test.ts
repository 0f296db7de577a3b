import { decode, type Account, type Operator } from '@nats-io/jwt';
import { createUser } from '@nats-io/nkeys';
import {
  MESH_JETSTREAM_LIMITS,
  MESH_SYSTEM_ACCOUNT_NAME,
  UNLIMITED_ACCOUNT_LIMITS,
  accountJwt,
  createSystemAccountSeed,
  meshAccountJwts,
  systemAccountJwt,
  createMeshTrust,
  keyFromSeed,
  meshTrustFromSeeds,
  meshTrustSeeds,
  operatorJwt,
  revokeUser,
  seedKind,
  seedProblem,
} from './trust-chain';

const seedOf = (kp: { getSeed(): Uint8Array }): string => new TextDecoder().decode(kp.getSeed());

test('the operator signs the account; the account lists its signing key and has no zero limits', async () => {
  const trust = createMeshTrust();
  const op = decode<Operator>(await operatorJwt(trust));
  expect(op.sub).toBe(trust.operator.getPublicKey());
  expect(op.iss).toBe(trust.operator.getPublicKey());
  const acc = decode<Account>(await accountJwt(trust));
  expect(acc.iss).toBe(trust.operator.getPublicKey());
  expect(acc.sub).toBe(trust.account.getPublicKey());
  expect(acc.nats.signing_keys).toEqual([trust.signingKey.getPublicKey()]);
  expect(acc.nats.limits).toMatchObject(UNLIMITED_ACCOUNT_LIMITS);
  expect(acc.nats.limits?.conn).toBe(-1);
  expect(acc.nats.revocations).toBeUndefined();
});

test('the operator names the system account; the operator signs it; it has connections but no JetStream', async () => {
  const trust = createMeshTrust();
  const sys = trust.systemAccount.getPublicKey();
  expect(sys).not.toBe(trust.account.getPublicKey());
  expect(decode<Operator>(await operatorJwt(trust)).nats.system_account).toBe(sys);
  const acc = decode<Account>(await systemAccountJwt(trust));
  expect(acc.name).toBe(MESH_SYSTEM_ACCOUNT_NAME);
  expect(acc.sub).toBe(sys);
  expect(acc.iss).toBe(trust.operator.getPublicKey());
  expect(acc.nats.limits).toEqual(UNLIMITED_ACCOUNT_LIMITS);
  // nats-server refuses to start with JetStream limits on the system account
  for (const k of ['mem_storage', 'disk_storage', 'streams', 'consumer']) expect(acc.nats.limits).not.toHaveProperty(k);
  expect(acc.nats.signing_keys).toBeUndefined();
  const preload = await meshAccountJwts(trust);
  expect(Object.keys(preload).sort()).toEqual([trust.account.getPublicKey(), sys].sort());
  expect(decode<Account>(preload[sys]!).sub).toBe(sys);
});

test('the mesh account has JetStream: file storage bounded by the servers, no memory storage', async () => {
  const acc = decode<Account>(await accountJwt(createMeshTrust()));
  expect(acc.nats.limits).toMatchObject(MESH_JETSTREAM_LIMITS);
  expect(acc.nats.limits?.disk_storage).toBe(-1);
  expect(acc.nats.limits?.mem_storage).toBe(0);
});

test('a revoked user is in the account JWT with the time of revocation', async () => {
  const trust = createMeshTrust();
  const user = createUser().getPublicKey();
  const revocations = revokeUser({}, user, new Date('2026-01-02T03:04:05.900Z'));
  expect(revocations).toEqual({ [user]: Math.floor(Date.parse('2026-01-02T03:04:05Z') / 1000) });
  const acc = decode<Account>(await accountJwt(trust, revocations));
  expect(acc.nats.revocations).toEqual(revocations);
});

test('the trust chain survives a round trip through its seeds', () => {
  const trust = createMeshTrust();
  const back = meshTrustFromSeeds(meshTrustSeeds(trust), 'Secret fnmesh/nats-trust');
  expect(back.operator.getPublicKey()).toBe(trust.operator.getPublicKey());
  expect(back.account.getPublicKey()).toBe(trust.account.getPublicKey());
  expect(back.signingKey.getPublicKey()).toBe(trust.signingKey.getPublicKey());
  expect(back.systemAccount.getPublicKey()).toBe(trust.systemAccount.getPublicKey());
});

test('a system account that is the mesh account (or its signing key) is refused', () => {
  const seeds = meshTrustSeeds(createMeshTrust());
  for (const systemAccount of [seeds.account, seeds.signingKey])
    expect(() => meshTrustFromSeeds({ ...seeds, systemAccount }, 'Secret fnmesh/t')).toThrow(
      /^the system account seed in Secret fnmesh\/t is the mesh account's own key or its signing key: the system account must be a key of its own/,
    );
  expect(seedKind(createSystemAccountSeed())).toBe('account');
  expect(() => meshTrustFromSeeds({ ...seeds, systemAccount: seeds.operator }, 'X')).toThrow(
    /the system account seed in X is an operator seed/,
  );
});

test('a seed of the wrong kind is refused, naming where it came from and what belongs there', () => {
  const trust = createMeshTrust();
  const seeds = meshTrustSeeds(trust);
  expect(seedKind(seeds.operator)).toBe('operator');
  expect(() => meshTrustFromSeeds({ ...seeds, signingKey: seeds.operator }, 'Secret fnmesh/nats-trust')).toThrow(
    "the account signing key in Secret fnmesh/nats-trust is an operator seed (SO…), where an account seed (SA…) belongs: give it the account key's seed",
  );
  expect(() => keyFromSeed(seedOf(createUser()), 'account', 'FNMESH_X')).toThrow(/FNMESH_X is a user seed \(SU…\)/);
  expect(seedProblem('not a seed', 'user')).toMatch(/^is not an nkey seed/);
  // one character changed: the checksum fails
  const bad = seeds.account.slice(0, -2) + (seeds.account.endsWith('AA') ? 'BB' : 'AA');
  expect(seedProblem(bad, 'account')).toMatch(/^is not a valid nkey seed/);
  expect(seedProblem(seeds.account, 'account')).toBeUndefined();
});
