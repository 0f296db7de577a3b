/**
 * The minter's decisions over an in-memory Secret store (the API server proof is
 * test/operator-nats-creds.test.ts): one write per mint, none at steady state, rotation when due, a
 * Secret it did not make left alone.
 */
import type { V1Secret } from '@kubernetes/client-node';
import { silentLogger } from '../common/logger';
import { parseCreds, replicaIdentity } from '../common/nats-identity';
import type { NatsCredsConfig } from './config';
import { NatsCredsMinter, requeueDelayMs, type CredsTarget } from './creds-minter';
import type { SecretWriter } from './kube-writer';
import { decodedSecretData } from './trust-store';

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

test('requeueDelayMs: the time until the check, at least a second', () => {
  const now = new Date(0);
  expect(requeueDelayMs(new Date(90_000), now)).toBe(90_000);
  expect(requeueDelayMs(new Date(-5), now)).toBe(1000);
});
