/**
 * The minter's decisions over an in-memory Secret store (the API server proof is
 * test/operator-nats-creds.test.ts): one write per mint, none at steady state, rotation when due, a
 * Secret it did not make left alone.
 */
import type { V1Secret } from '@kubernetes/client-node';
import { silentLogger } from '../common/logger';
import { decode, encodeAccount, encodeOperator, type Operator } from '@nats-io/jwt';
import {
  TRUST_SECRET_KEYS,
  createMeshTrust,
  createSystemAccountSeed,
  meshTrustSeeds,
  parseCreds,
  replicaIdentity,
  trustSecretData,
} from '../common/nats-identity';
import type { NatsCredsConfig } from './config';
import { NatsCredsMinter, requeueDelayMs, type CredsTarget } from './creds-minter';
import type { SecretWriter } from './kube-writer';
import {
  ACCOUNT_SECRET_KEYS,
  accountSecretCurrent,
  accountSecretData,
  decodedSecretData,
  loadTrust,
} from './trust-store';

const config: NatsCredsConfig = {
  trustSecret: { namespace: 'sys', name: 'trust' },
  createTrust: true,
  accountSecret: { namespace: 'sys', name: 'account' },
  userTtlMs: 60 * 60_000,
  gatewayCreds: { namespace: 'sys', name: 'gw' },
};

function store() {
  const secrets = new Map<string, V1Secret>();
  const writes: string[] = [];
  const key = (ns: string, name: string) => `${ns}/${name}`;
  const writer: SecretWriter = {
    readSecret: async (ns, name) => structuredClone(secrets.get(key(ns, name))),
    applySecret: async (s) => {
      const k = key(s.metadata!.namespace!, s.metadata!.name!);
      writes.push(`apply ${k}`);
      secrets.set(k, structuredClone(s));
      return s;
    },
    createSecret: async (s) => {
      const k = key(s.metadata!.namespace!, s.metadata!.name!);
      if (secrets.has(k)) return undefined;
      writes.push(`create ${k}`);
      secrets.set(k, structuredClone(s));
      return s;
    },
    addSecretData: async (ns, name, rv, data) => {
      const s = secrets.get(key(ns, name));
      if (!s || s.metadata?.resourceVersion !== rv) return undefined;
      writes.push(`add ${key(ns, name)}`);
      const updated = { ...s, data: { ...s.data, ...data } };
      secrets.set(key(ns, name), structuredClone(updated));
      return updated;
    },
  };
  return { secrets, writes, writer };
}

const target: CredsTarget = {
  identity: replicaIdentity('ns', 'svc'),
  namespace: 'ns',
  name: 'fnmesh-service-ns-svc-nats',
  responseTtlMs: 600_000,
  owner: { apiVersion: 'fnmesh.io/v1alpha1', kind: 'FunctionService', name: 'svc', uid: 'u1', controller: true },
};

test('mints once, writes nothing while the JWT is fresh, and mints again once its renewal is due', async () => {
  const s = store();
  const clock = { now: new Date() };
  const minter = new NatsCredsMinter({ secrets: s.writer, config, now: () => clock.now });
  const checkAt = await minter.ensure(target, silentLogger);
  expect(s.writes).toEqual(['create sys/trust', 'apply sys/account', 'apply ns/fnmesh-service-ns-svc-nats']);
  const first = decodedSecretData(s.secrets.get('ns/fnmesh-service-ns-svc-nats'))['nats.creds']!;
  expect(checkAt.getTime() - clock.now.getTime()).toBeGreaterThan(35 * 60_000); // two thirds of an hour
  expect(await minter.ensure(target, silentLogger)).toEqual(checkAt);
  expect(s.writes).toHaveLength(3);

  clock.now = new Date(checkAt.getTime() + 1000);
  await minter.ensure(target, silentLogger);
  expect(s.writes).toHaveLength(4);
  const second = decodedSecretData(s.secrets.get('ns/fnmesh-service-ns-svc-nats'))['nats.creds']!;
  expect(parseCreds(second, 'x', 'y').jwt).not.toBe(parseCreds(first, 'x', 'y').jwt);
});

test('a new FunctionService of the same name (another uid) gets new credentials', async () => {
  const s = store();
  const minter = new NatsCredsMinter({ secrets: s.writer, config });
  await minter.ensure(target, silentLogger);
  await minter.ensure({ ...target, owner: { ...target.owner!, uid: 'u2' } }, silentLogger);
  expect(s.writes.filter((w) => w.startsWith('apply ns/'))).toHaveLength(2);
  expect(s.secrets.get('ns/fnmesh-service-ns-svc-nats')!.metadata!.ownerReferences![0]!.uid).toBe('u2');
});

test('a Secret of that name the operator did not make is left alone, with an error naming it', async () => {
  const s = store();
  s.secrets.set('ns/fnmesh-service-ns-svc-nats', { metadata: { name: 'fnmesh-service-ns-svc-nats', namespace: 'ns' } });
  const minter = new NatsCredsMinter({ secrets: s.writer, config });
  await expect(minter.ensure(target, silentLogger)).rejects.toThrow(
    /fnmesh-service-ns-svc-nats.*not made by the fnmesh operator/,
  );
  expect(s.writes.filter((w) => w.startsWith('apply ns/'))).toEqual([]);
});

/** A trust Secret as an operator from before the system account wrote it (three seeds) and its account Secret. */
function olderOperatorsSecrets(s: ReturnType<typeof store>) {
  const { [TRUST_SECRET_KEYS.systemAccountSeed]: _none, ...old } = trustSecretData(meshTrustSeeds(createMeshTrust()));
  const b64 = (v: string) => Buffer.from(v).toString('base64');
  s.secrets.set('sys/trust', {
    metadata: { name: 'trust', namespace: 'sys', resourceVersion: '7' },
    data: Object.fromEntries(Object.entries(old).map(([k, v]) => [k, b64(v)])),
  });
  return old;
}

test("an older operator's trust Secret gets a system account seed once, and the account Secret is published again", async () => {
  const s = store();
  const old = olderOperatorsSecrets(s);
  const minter = new NatsCredsMinter({ secrets: s.writer, config });
  await minter.ensure(target, silentLogger);
  expect(s.writes).toEqual(['add sys/trust', 'apply sys/account', 'apply ns/fnmesh-service-ns-svc-nats']);
  const data = decodedSecretData(s.secrets.get('sys/trust'));
  // the old seeds are kept: every user minted before stays valid
  for (const [k, v] of Object.entries(old)) expect(data[k]).toBe(v);
  const trust = await minter.trust(silentLogger);
  const published = decodedSecretData(s.secrets.get('sys/account'));
  expect(decode<Operator>(published[ACCOUNT_SECRET_KEYS.operatorJwt]!).nats.system_account).toBe(
    trust.systemAccount.getPublicKey(),
  );
  expect(published[ACCOUNT_SECRET_KEYS.resolverConf]).toContain(trust.systemAccount.getPublicKey());
  expect(accountSecretCurrent(published, trust)).toBe(true);
  // again (a restarted operator): nothing to add, nothing to publish
  const again = new NatsCredsMinter({ secrets: s.writer, config });
  expect((await again.trust(silentLogger)).systemAccount.getPublicKey()).toBe(trust.systemAccount.getPublicKey());
  expect(s.writes).toHaveLength(3);
});

test('an account Secret published by an older operator (no system account, no JetStream) is not current', async () => {
  const trust = createMeshTrust();
  const data = await accountSecretData(trust);
  expect(accountSecretCurrent(data, trust)).toBe(true);
  const olderOperator = await encodeOperator('fnmesh', trust.operator);
  expect(accountSecretCurrent({ ...data, [ACCOUNT_SECRET_KEYS.operatorJwt]: olderOperator }, trust)).toBe(false);
  const olderAccount = await encodeAccount(
    'fnmesh',
    trust.account,
    { limits: { conn: -1 }, signing_keys: [trust.signingKey.getPublicKey()] },
    { signer: trust.operator },
  );
  expect(accountSecretCurrent({ ...data, [ACCOUNT_SECRET_KEYS.accountJwt]: olderAccount }, trust)).toBe(false);
  const olderConf = data[ACCOUNT_SECRET_KEYS.resolverConf]!.replace(/^system_account: .*\n/m, '');
  expect(accountSecretCurrent({ ...data, [ACCOUNT_SECRET_KEYS.resolverConf]: olderConf }, trust)).toBe(false);
});

test("two replicas adding the system account seed at once: the loser of the conditional patch takes the winner's", async () => {
  const s = store();
  olderOperatorsSecrets(s);
  const winner = createSystemAccountSeed();
  const add = s.writer.addSecretData;
  let raced = false;
  // the other replica's patch lands between this one's read and its patch
  s.writer.addSecretData = async (ns, name, rv, data) => {
    if (!raced) {
      raced = true;
      await add(ns, name, rv, { [TRUST_SECRET_KEYS.systemAccountSeed]: Buffer.from(winner).toString('base64') });
      const cur = s.secrets.get(`${ns}/${name}`)!;
      cur.metadata = { ...cur.metadata, resourceVersion: '8' };
    }
    return add(ns, name, rv, data);
  };
  const trust = await loadTrust(s.writer, config);
  expect(meshTrustSeeds(trust).systemAccount).toBe(winner);
  expect(s.writes).toEqual(['add sys/trust']);
});

test('a trust Secret the user names without the system account seed is not written: the error names the key and the fix', async () => {
  const s = store();
  olderOperatorsSecrets(s);
  await expect(loadTrust(s.writer, { ...config, createTrust: false })).rejects.toThrow(
    /^Secret sys\/trust has no key system-account\.nk: .*the operator never writes a trust Secret you name; add a new account seed .*kubectl -n sys patch secret trust/,
  );
  expect(s.writes).toEqual([]);
});

test('requeueDelayMs: the time until the check, at least a second', () => {
  const now = new Date(0);
  expect(requeueDelayMs(new Date(90_000), now)).toBe(90_000);
  expect(requeueDelayMs(new Date(-5), now)).toBe(1000);
});
