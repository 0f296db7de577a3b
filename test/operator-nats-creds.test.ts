/**
 * The operator's NATS credentials on a real control plane (kube-apiserver, etcd, kube-controller-manager:
 * the garbage collector runs): the trust Secret it creates once, the public account Secret a real
 * nats-server is configured from, the user JWT it mints per FunctionService (permissions, signer, owner)
 * and for the gateway, the sidecar's mount, rotation, removal with the FunctionService, and RBAC: only the
 * operator's ServiceAccount reads the seeds. The operator runs with only deploy/rbac/operator.yaml.
 */
import path from 'node:path';
import { connect } from '@nats-io/transport-node';
import { credsAuthenticator } from '@nats-io/nats-core';
import type { V1Deployment, V1Secret } from '@kubernetes/client-node';
import { ConfigError } from '../common/errors';
import type { KubeAccess } from '../common/kube-access';
import { KubeClient } from '../common/kube-client';
import { accessFromSpec } from '../common/kubeconfig';
import {
  CREDS_MOUNT_DIR,
  CREDS_MOUNT_FILE,
  GATEWAY_IDENTITY,
  TRUST_SECRET_KEYS,
  TRUST_SECRET_NAME,
  createMeshTrust,
  inboxPrefix,
  meshTrustSeeds,
  parseCreds,
  permissionsFor,
  replicaIdentity,
  credsSecretName,
  trustFromSecretData,
  trustSecretData,
  type MeshTrust,
  type ParsedCreds,
} from '../common/nats-identity';
import { serviceCallWildcard, serviceQueueGroup } from '../common/protocol';
import { ACCOUNT_SECRET_KEYS, decodedSecretData, loadTrust, secretWriter, type Operator } from '../operator';
import { startControlPlane, type ControlPlane } from './helpers/control-plane';
import { installCrds } from './helpers/crds';
import { startNatsServer } from './helpers/nats-server';
import { LEASE_NS, OperatorSet, testOperatorConfig } from './helpers/operators';
import { waitFor } from './helpers/wait';

jest.setTimeout(120_000);

const repo = path.resolve(__dirname, '..');
const NS = 'default';
/** Short lifetimes so that rotation happens within the test (renewed at two thirds: every 4 s). */
const USER_TTL_MS = 6000;

let cp: ControlPlane;
const operators = new OperatorSet(() => cp);
let operatorToken: string;
let gatewayToken: string;
let operator: Operator;

async function kubectl(args: string[]): Promise<string> {
  const r = await cp.kubectl(args);
  if (r.code !== 0) throw new Error(`kubectl ${args.join(' ')} failed (exit ${r.code}): ${r.stderr}`);
  return r.stdout;
}

function tokenAccess(token: string): KubeAccess {
  return accessFromSpec({ server: cp.server, ca: { file: cp.caFile }, token: { data: token } });
}

async function getSecret(namespace: string, name: string): Promise<V1Secret | undefined> {
  const r = await cp.request(`/api/v1/namespaces/${namespace}/secrets/${name}`);
  if (r.status === 404) return undefined;
  if (r.status !== 200) throw new Error(`GET secret ${namespace}/${name}: HTTP ${r.status}`);
  return r.body as V1Secret;
}

function credsOf(secret: V1Secret): ParsedCreds {
  return parseCreds(decodedSecretData(secret)['nats.creds'] ?? '', 'the Secret', 'a test');
}

async function trustFromCluster(): Promise<MeshTrust> {
  const s = await getSecret(LEASE_NS, TRUST_SECRET_NAME);
  return trustFromSecretData(decodedSecretData(s), 'the trust Secret');
}

async function createFsvc(name: string, spec: Record<string, unknown>): Promise<string> {
  const r = await cp.request(`/apis/fnmesh.io/v1alpha1/namespaces/${NS}/functionservices`, {
    method: 'POST',
    body: { apiVersion: 'fnmesh.io/v1alpha1', kind: 'FunctionService', metadata: { name, namespace: NS }, spec },
  });
  if (r.status !== 201)
    throw new Error(`creating FunctionService ${name}: HTTP ${r.status}: ${JSON.stringify(r.body)}`);
  return (r.body as { metadata: { uid: string } }).metadata.uid;
}

const spec = {
  replicas: 1,
  // a function whose timeout exceeds the default reply window (10 min): the JWT must allow replies that late
  functions: [
    { name: 'hello', rule: { rule: 'allow' } },
    { name: 'slow', timeoutMs: 900_000 },
  ],
  container: { image: 'example.com/fn:1' },
};

beforeAll(async () => {
  cp = await startControlPlane();
  await installCrds(cp);
  await kubectl(['create', 'namespace', LEASE_NS]);
  await kubectl(['apply', '-f', path.join(repo, 'deploy', 'rbac', 'operator.yaml')]);
  await kubectl(['apply', '-f', path.join(repo, 'deploy', 'rbac', 'gateway.yaml')]);
  operatorToken = (await kubectl(['create', 'token', 'fnmesh-operator', '-n', LEASE_NS, '--duration=1h'])).trim();
  gatewayToken = (await kubectl(['create', 'token', 'fnmesh-gateway', '-n', LEASE_NS, '--duration=1h'])).trim();
  operator = await operators.start({
    identity: 'nats-creds-operator',
    config: testOperatorConfig({ FNMESH_NATS_AUTH: 'jwt', FNMESH_NATS_USER_TTL_MS: String(USER_TTL_MS) }),
    kubeAccess: tokenAccess(operatorToken),
    waitLeading: true,
  });
}, 300_000);

afterAll(async () => {
  await operators.stopAll();
  await cp?.stop();
});

describe('the trust chain', () => {
  test('the operator creates the trust Secret once and publishes its public parts without the seeds', async () => {
    const trustSecret = await waitFor(() => getSecret(LEASE_NS, TRUST_SECRET_NAME), {
      timeoutMs: 20_000,
      what: 'the trust Secret',
    });
    expect(Object.keys(trustSecret.data ?? {}).sort()).toEqual([
      'account.nk',
      'operator.nk',
      'signing-key.nk',
      'system-account.nk',
    ]);
    const trust = await trustFromCluster();
    const account = await waitFor(() => getSecret(LEASE_NS, 'fnmesh-nats-account'), { what: 'the account Secret' });
    const data = decodedSecretData(account);
    expect(Object.keys(data).sort()).toEqual(Object.values(ACCOUNT_SECRET_KEYS).sort());
    const seeds = Object.values(decodedSecretData(trustSecret));
    for (const v of Object.values(data)) for (const seed of seeds) expect(v).not.toContain(seed.trim());
    expect(data[ACCOUNT_SECRET_KEYS.resolverConf]).toContain(trust.account.getPublicKey());
    expect(data[ACCOUNT_SECRET_KEYS.resolverConf]).toContain(`system_account: "${trust.systemAccount.getPublicKey()}"`);
  });

  test("an older operator's trust Secret gets one system account seed, even with two operators racing; a named one is not written", async () => {
    const clients = [new KubeClient(tokenAccess(operatorToken)), new KubeClient(tokenAccess(operatorToken))];
    try {
      const { [TRUST_SECRET_KEYS.systemAccountSeed]: _none, ...old } = trustSecretData(
        meshTrustSeeds(createMeshTrust()),
      );
      for (const name of ['older-trust', 'named-older-trust'])
        await kubectl([
          'create',
          'secret',
          'generic',
          name,
          '-n',
          LEASE_NS,
          ...Object.entries(old).map(([k, v]) => `--from-literal=${k}=${v}`),
        ]);
      const cfg = {
        trustSecret: { namespace: LEASE_NS, name: 'older-trust' },
        createTrust: true,
        accountSecret: { namespace: LEASE_NS, name: 'older-account' },
        userTtlMs: USER_TTL_MS,
        gatewayCreds: { namespace: LEASE_NS, name: 'older-gateway' },
      };
      const staleVersion = (await getSecret(LEASE_NS, 'older-trust'))!.metadata!.resourceVersion!;
      const [a, b] = await Promise.all(clients.map((c) => loadTrust(secretWriter(c), cfg)));
      // the add is conditional on the version read: a stale one is a conflict, not a second key
      const stale = await secretWriter(clients[0]!).addSecretData(LEASE_NS, 'older-trust', staleVersion, {
        [TRUST_SECRET_KEYS.systemAccountSeed]: Buffer.from(meshTrustSeeds(createMeshTrust()).systemAccount).toString(
          'base64',
        ),
      });
      expect(stale).toBeUndefined();
      expect(a!.systemAccount.getPublicKey()).toBe(b!.systemAccount.getPublicKey());
      const stored = decodedSecretData(await getSecret(LEASE_NS, 'older-trust'));
      expect(stored[TRUST_SECRET_KEYS.systemAccountSeed]).toBe(meshTrustSeeds(a!).systemAccount);
      for (const [k, v] of Object.entries(old)) expect(stored[k]).toBe(v);
      // a trust Secret the user names: an error naming the key and the fix, and the Secret as it was
      const named = { ...cfg, trustSecret: { namespace: LEASE_NS, name: 'named-older-trust' }, createTrust: false };
      const before = await getSecret(LEASE_NS, 'named-older-trust');
      await expect(loadTrust(secretWriter(clients[0]!), named)).rejects.toThrow(
        /has no key system-account\.nk: .*the operator never writes a trust Secret you name/,
      );
      expect((await getSecret(LEASE_NS, 'named-older-trust'))!.metadata!.resourceVersion).toBe(
        before!.metadata!.resourceVersion,
      );
    } finally {
      await Promise.all(clients.map((c) => c.close()));
    }
  });

  test('two operators racing to create a trust chain end up with one', async () => {
    const clients = [new KubeClient(tokenAccess(operatorToken)), new KubeClient(tokenAccess(operatorToken))];
    try {
      const cfg = {
        trustSecret: { namespace: LEASE_NS, name: 'race-trust' },
        createTrust: true,
        accountSecret: { namespace: LEASE_NS, name: 'race-account' },
        userTtlMs: USER_TTL_MS,
        gatewayCreds: { namespace: LEASE_NS, name: 'race-gateway' },
      };
      const [a, b] = await Promise.all(clients.map((c) => loadTrust(secretWriter(c), cfg)));
      expect(a!.operator.getPublicKey()).toBe(b!.operator.getPublicKey());
      expect(a!.signingKey.getPublicKey()).toBe(b!.signingKey.getPublicKey());
      // a trust Secret the user names must exist: the operator does not create it
      await expect(
        loadTrust(secretWriter(clients[0]!), {
          ...cfg,
          trustSecret: { namespace: LEASE_NS, name: 'mine' },
          createTrust: false,
        }),
      ).rejects.toThrow(ConfigError);
      expect(await getSecret(LEASE_NS, 'mine')).toBeUndefined();
    } finally {
      await Promise.all(clients.map((c) => c.close()));
    }
  });
});

describe('a FunctionService', () => {
  const name = 'orders';
  const identity = replicaIdentity(NS, name);
  const secretName = credsSecretName(identity);
  let uid: string;

  beforeAll(async () => {
    uid = await createFsvc(name, spec);
  });

  test('gets a Secret with a user JWT of exactly its permissions, signed by the account signing key, owned by it', async () => {
    const secret = await waitFor(() => getSecret(NS, secretName), { timeoutMs: 20_000, what: 'the creds Secret' });
    expect(secret.metadata?.ownerReferences).toEqual([
      expect.objectContaining({ kind: 'FunctionService', name, uid, controller: true }),
    ]);
    const creds = credsOf(secret); // parseCreds verifies the JWT's signature and that the seed is its user's
    const trust = await trustFromCluster();
    expect(creds.claims.iss).toBe(trust.signingKey.getPublicKey());
    expect(creds.claims.nats.issuer_account).toBe(trust.account.getPublicKey());
    const want = permissionsFor(identity, { responseTtlMs: 900_000 });
    expect(creds.claims.nats.pub?.allow).toEqual(want.publish);
    expect(creds.claims.nats.sub?.allow).toEqual(want.subscribe);
    expect(creds.claims.nats.resp).toEqual({ max: 1, ttl: 900_000 * 1_000_000 });
    expect(creds.expiresAt!.getTime() - creds.issuedAt.getTime()).toBeLessThanOrEqual(USER_TTL_MS);
  });

  test('its credentials log in to a nats-server configured from the published account Secret', async () => {
    const account = decodedSecretData(await getSecret(LEASE_NS, 'fnmesh-nats-account'));
    const server = await startNatsServer({ config: account[ACCOUNT_SECRET_KEYS.resolverConf] });
    try {
      const creds = decodedSecretData(await getSecret(NS, secretName))['nats.creds']!;
      const nc = await connect({
        servers: server.url,
        reconnect: false,
        authenticator: credsAuthenticator(new TextEncoder().encode(creds)),
        inboxPrefix: inboxPrefix(identity),
      });
      try {
        nc.subscribe(serviceCallWildcard(NS, name), { queue: serviceQueueGroup(NS, name) });
        await nc.flush();
      } finally {
        await nc.close();
      }
      await expect(connect({ servers: server.url, reconnect: false })).rejects.toThrow(/Authorization Violation/);
    } finally {
      await server.stop();
    }
  });

  test("the Deployment's sidecar mounts the Secret read-only and reads it as FNMESH_NATS_CREDS", async () => {
    const d = await waitFor(
      async () => {
        const r = await cp.request(`/apis/apps/v1/namespaces/${NS}/deployments/${name}`);
        return r.status === 200 ? (r.body as V1Deployment) : undefined;
      },
      { timeoutMs: 20_000, what: 'the Deployment' },
    );
    const pod = d.spec!.template.spec!;
    expect(pod.volumes).toEqual([expect.objectContaining({ secret: expect.objectContaining({ secretName }) })]);
    const sidecar = pod.initContainers!.find((c) => c.name === 'fnmesh-sidecar')!;
    expect(sidecar.volumeMounts).toEqual([expect.objectContaining({ mountPath: CREDS_MOUNT_DIR, readOnly: true })]);
    expect(sidecar.env).toContainEqual({ name: 'FNMESH_NATS_CREDS', value: CREDS_MOUNT_FILE });
    for (const c of pod.containers) expect(c.volumeMounts ?? []).toEqual([]);
  });

  test('its JWT is rotated before it expires, and the new one verifies with the same signer', async () => {
    const first = credsOf((await getSecret(NS, secretName))!);
    const next = await waitFor(
      async () => {
        const s = await getSecret(NS, secretName);
        const c = s && credsOf(s);
        return c && c.jwt !== first.jwt ? c : undefined;
      },
      { timeoutMs: USER_TTL_MS * 3, intervalMs: 200, what: 'the JWT in the Secret to be rotated' },
    );
    expect(next.claims.iss).toBe(first.claims.iss);
    expect(next.issuedAt.getTime()).toBeGreaterThan(first.issuedAt.getTime());
    // renewed while the old one was still valid (two thirds of its lifetime, not at its expiry)
    expect(next.issuedAt.getTime()).toBeLessThan(first.expiresAt!.getTime());
    // a rotation rewrites the Secret only: the Deployment (its volume names the Secret, not its content) stays
    expect(operator.writes((r) => r.resource === 'deployments' && r.namespace === NS)).toHaveLength(1);
  });

  test('deleting the FunctionService removes its Secret (garbage collector)', async () => {
    const r = await cp.request(`/apis/fnmesh.io/v1alpha1/namespaces/${NS}/functionservices/${name}`, {
      method: 'DELETE',
    });
    expect(r.status).toBe(200);
    // The controller-manager's garbage collector re-reads API discovery every 30 s (fixed in its code): for a
    // CRD installed moments ago it learns the kind first, hence the long deadline.
    await waitFor(async () => (await getSecret(NS, secretName)) === undefined, {
      timeoutMs: 90_000,
      intervalMs: 200,
      what: 'the creds Secret to be garbage-collected',
    });
  });
});

test("the gateway's own credentials are minted into its Secret with the gateway's permissions", async () => {
  const secret = await waitFor(() => getSecret(LEASE_NS, credsSecretName(GATEWAY_IDENTITY)), {
    timeoutMs: 20_000,
    what: "the gateway's creds Secret",
  });
  const creds = credsOf(secret);
  const trust = await trustFromCluster();
  expect(creds.claims.iss).toBe(trust.signingKey.getPublicKey());
  expect(creds.claims.nats.pub?.allow).toEqual(permissionsFor(GATEWAY_IDENTITY).publish);
  expect(creds.claims.nats.sub?.allow).toEqual(permissionsFor(GATEWAY_IDENTITY).subscribe);
});

describe('RBAC', () => {
  const trustPath = `/api/v1/namespaces/${LEASE_NS}/secrets/${TRUST_SECRET_NAME}`;

  test("the gateway's ServiceAccount may not read the trust Secret, nor any Secret", async () => {
    expect((await cp.request(trustPath, { token: gatewayToken })).status).toBe(403);
    expect((await cp.request(`/api/v1/namespaces/${LEASE_NS}/secrets`, { token: gatewayToken })).status).toBe(403);
    expect(
      (
        await cp.request(`/api/v1/namespaces/${LEASE_NS}/secrets/${credsSecretName(GATEWAY_IDENTITY)}`, {
          token: gatewayToken,
        })
      ).status,
    ).toBe(403);
  });

  test("the operator's ServiceAccount reads the trust Secret by name, but may not list or delete Secrets", async () => {
    expect((await cp.request(trustPath, { token: operatorToken })).status).toBe(200);
    expect((await cp.request(`/api/v1/namespaces/${LEASE_NS}/secrets`, { token: operatorToken })).status).toBe(403);
    expect((await cp.request(trustPath, { token: operatorToken, method: 'DELETE' })).status).toBe(403);
  });
});
