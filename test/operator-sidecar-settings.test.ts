/**
 * The operator's sidecar settings and the FunctionService's pull settings on a real control plane (one per
 * file; the operator runs with only deploy/rbac/operator.yaml): FNMESH_SIDECAR_NATS_TLS_CA_FILE copied into
 * the FunctionService's own CA Secret (owned by it), mounted into the sidecar with FNMESH_NATS_TLS_CA, a changed
 * file rolling the pod template; a CA file that is not PEM stopping the operator at start; the sidecar's and
 * the function's pull policies and the pod's pull Secrets, with a policy or Secret taken out of the spec
 * reaching the Deployment; the operator's default pull policy equal to the API server's own defaulting; and no
 * write at steady state (the drift check does not fight the server's defaults).
 */
import { copyFileSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { V1Container, V1Deployment, V1Secret } from '@kubernetes/client-node';
import { ConfigError } from '../common/errors';
import type { KubeAccess } from '../common/kube-access';
import { accessFromSpec } from '../common/kubeconfig';
import { silentLogger } from '../common/logger';
import { SIDECAR_ENV } from '../common/sidecar-env';
import {
  CA_HASH_ANNOTATION,
  CA_MOUNT_DIR,
  CA_MOUNT_FILE,
  CA_SECRET_KEY,
  CA_VOLUME_NAME,
  SIDECAR_CONTAINER_NAME,
  decodedSecretData,
  defaultPullPolicy,
  natsCaSecretName,
  parseNatsCaBundle,
  startOperator,
  type Operator,
} from '../operator';
import { startControlPlane, type ControlPlane } from './helpers/control-plane';
import { installCrds } from './helpers/crds';
import { LEASE_NS, OperatorSet, testOperatorConfig } from './helpers/operators';
import { makeTestPki, type TestPki } from './helpers/tls-certs';
import { waitFor } from './helpers/wait';

jest.setTimeout(120_000);

const repo = path.resolve(__dirname, '..');
const NS = 'default';
const RESYNC_MS = 1500;

let cp: ControlPlane;
let pki: TestPki;
let caFile: string;
let operatorAccess: KubeAccess;
const operators = new OperatorSet(() => cp);
let operator: Operator;

async function kubectl(args: string[], input?: string): Promise<string> {
  const r = await cp.kubectl(args, input);
  if (r.code !== 0) throw new Error(`kubectl ${args.join(' ')} failed (exit ${r.code}): ${r.stderr}`);
  return r.stdout;
}

async function get<T>(apiPath: string): Promise<T | undefined> {
  const r = await cp.request(apiPath);
  if (r.status === 404) return undefined;
  if (r.status !== 200) throw new Error(`GET ${apiPath}: HTTP ${r.status}`);
  return r.body as T;
}

const deployment = (name: string) => get<V1Deployment>(`/apis/apps/v1/namespaces/${NS}/deployments/${name}`);
const secret = (name: string) => get<V1Secret>(`/api/v1/namespaces/${NS}/secrets/${name}`);
const sidecarOf = (d: V1Deployment): V1Container =>
  d.spec!.template.spec!.initContainers!.find((c) => c.name === SIDECAR_CONTAINER_NAME)!;

async function createFsvc(name: string, spec: Record<string, unknown>): Promise<string> {
  const r = await cp.request(`/apis/fnmesh.io/v1alpha1/namespaces/${NS}/functionservices`, {
    method: 'POST',
    body: { apiVersion: 'fnmesh.io/v1alpha1', kind: 'FunctionService', metadata: { name, namespace: NS }, spec },
  });
  if (r.status !== 201)
    throw new Error(`creating FunctionService ${name}: HTTP ${r.status}: ${JSON.stringify(r.body)}`);
  return (r.body as { metadata: { uid: string } }).metadata.uid;
}

/** Puts `pem` at caFile the way the kubelet updates a mounted Secret: a new file renamed over the old one. */
function replaceCaFile(pem: string): void {
  writeFileSync(`${caFile}.new`, pem);
  renameSync(`${caFile}.new`, caFile);
}

beforeAll(async () => {
  pki = makeTestPki();
  caFile = path.join(pki.dir, 'mounted', CA_SECRET_KEY);
  mkdirSync(path.dirname(caFile));
  copyFileSync(pki.caFile, caFile);
  cp = await startControlPlane();
  await installCrds(cp);
  await kubectl(['create', 'namespace', LEASE_NS]);
  await kubectl(['apply', '-f', path.join(repo, 'deploy', 'rbac', 'operator.yaml')]);
  const token = (await kubectl(['create', 'token', 'fnmesh-operator', '-n', LEASE_NS, '--duration=1h'])).trim();
  operatorAccess = accessFromSpec({ server: cp.server, ca: { file: cp.caFile }, token: { data: token } });
  operator = await operators.start({
    identity: 'sidecar-settings-operator',
    config: testOperatorConfig({
      FNMESH_SIDECAR_NATS_TLS_CA_FILE: caFile,
      FNMESH_SIDECAR_IMAGE_PULL_POLICY: 'Always',
      FNMESH_RESYNC_MS: String(RESYNC_MS),
    }),
    kubeAccess: operatorAccess,
    waitLeading: true,
  });
}, 300_000);

afterAll(async () => {
  await operators.stopAll();
  await cp?.stop();
  pki?.remove();
});

test('a CA file that is not PEM stops the operator at start, naming the setting', async () => {
  const bad = path.join(pki.dir, 'not-a-ca.crt');
  writeFileSync(bad, 'this is not a certificate\n');
  const start = startOperator({
    config: testOperatorConfig({ FNMESH_SIDECAR_NATS_TLS_CA_FILE: bad }),
    kubeAccess: operatorAccess,
    logger: silentLogger,
    serveOps: false,
    identity: 'bad-ca',
    onLostLeadership: () => undefined,
  });
  await expect(start).rejects.toThrow(ConfigError);
  await expect(start).rejects.toThrow(`FNMESH_SIDECAR_NATS_TLS_CA_FILE (${bad}) holds no PEM certificate`);
});

test("the sidecars' CA: an owned Secret beside the FunctionService, mounted with FNMESH_NATS_TLS_CA; a new file rolls the pods", async () => {
  const uid = await createFsvc('tls', { container: { image: 'example.com/fn:1' }, functions: [{ name: 'hello' }] });
  const ca = parseNatsCaBundle(readFileSync(pki.caFile, 'utf8'), 'the test CA');
  const d = await waitFor(() => deployment('tls'), { timeoutMs: 20_000, what: 'the Deployment of tls' });
  const pod = d.spec!.template;
  expect(pod.metadata!.annotations?.[CA_HASH_ANNOTATION]).toBe(ca.sha256);
  const side = sidecarOf(d);
  expect(side.env).toContainEqual({ name: SIDECAR_ENV.natsTlsCa, value: CA_MOUNT_FILE });
  expect(side.volumeMounts).toContainEqual({ name: CA_VOLUME_NAME, mountPath: CA_MOUNT_DIR, readOnly: true });
  const volume = pod.spec!.volumes!.find((v) => v.name === CA_VOLUME_NAME)!;
  expect(volume.secret!.secretName).toBe(natsCaSecretName(NS, 'tls'));
  // the function container sees no CA mount
  expect(pod.spec!.containers[0]!.volumeMounts ?? []).toEqual([]);

  const s = (await secret(natsCaSecretName(NS, 'tls')))!;
  expect(decodedSecretData(s)[CA_SECRET_KEY]).toBe(ca.pem);
  expect(s.metadata!.ownerReferences).toEqual([
    expect.objectContaining({ uid, controller: true, kind: 'FunctionService' }),
  ]);

  // the kubelet swaps the operator's mounted file: the Secret and the pod template follow (at the latest a resync)
  const other = parseNatsCaBundle(readFileSync(pki.otherCaFile, 'utf8'), 'the other CA');
  const generation = d.metadata!.generation!;
  replaceCaFile(readFileSync(pki.otherCaFile, 'utf8'));
  const rolled = await waitFor(
    async () => {
      const now = await deployment('tls');
      return now?.spec!.template.metadata!.annotations?.[CA_HASH_ANNOTATION] === other.sha256 ? now : undefined;
    },
    { timeoutMs: 20_000, what: 'the pod template to carry the new CA' },
  );
  expect(rolled.metadata!.generation).toBeGreaterThan(generation);
  expect(decodedSecretData(await secret(natsCaSecretName(NS, 'tls')))[CA_SECRET_KEY]).toBe(other.pem);

  // deleted with its FunctionService (the garbage collector: the last test of this file waits for it)
  await kubectl(['delete', 'fsvc', 'tls', '-n', NS, '--wait=false']);
  replaceCaFile(readFileSync(pki.caFile, 'utf8'));
});

test('pull policies and pull Secrets reach the Deployment, and leave it when taken out of the spec', async () => {
  await createFsvc('pulls', {
    container: { image: 'example.com/fn:1', imagePullPolicy: 'Never' },
    imagePullSecrets: [{ name: 'regcred' }, { name: 'other' }],
  });
  const d = await waitFor(() => deployment('pulls'), { timeoutMs: 20_000, what: 'the Deployment of pulls' });
  expect(d.spec!.template.spec!.containers[0]!.imagePullPolicy).toBe('Never');
  expect(sidecarOf(d).imagePullPolicy).toBe('Always'); // FNMESH_SIDECAR_IMAGE_PULL_POLICY
  expect(d.spec!.template.spec!.imagePullSecrets).toEqual([{ name: 'regcred' }, { name: 'other' }]);

  await kubectl([
    'patch',
    'fsvc',
    'pulls',
    '-n',
    NS,
    '--type=json',
    '-p',
    JSON.stringify([
      { op: 'remove', path: '/spec/container/imagePullPolicy' },
      { op: 'replace', path: '/spec/imagePullSecrets', value: [{ name: 'other' }] },
    ]),
  ]);
  await waitFor(
    async () => {
      const now = await deployment('pulls');
      const spec = now?.spec!.template.spec;
      return (
        spec?.containers[0]!.imagePullPolicy === 'IfNotPresent' &&
        JSON.stringify(spec.imagePullSecrets) === JSON.stringify([{ name: 'other' }])
      );
    },
    { timeoutMs: 20_000, what: 'the pull policy back to the default and the pull Secret taken out' },
  );
  await kubectl([
    'patch',
    'fsvc',
    'pulls',
    '-n',
    NS,
    '--type=json',
    '-p',
    '[{"op":"remove","path":"/spec/imagePullSecrets"}]',
  ]);
  await waitFor(async () => (await deployment('pulls'))?.spec!.template.spec!.imagePullSecrets === undefined, {
    timeoutMs: 20_000,
    what: 'the last pull Secret taken out',
  });
});

test("the operator's default pull policy is what the API server defaults to", async () => {
  const images = [
    'example.com/fn',
    'example.com/fn:latest',
    'example.com/fn:1.2',
    'localhost:5000/fn',
    'localhost:5000/team/fn:2',
    `example.com/fn@sha256:${'b'.repeat(64)}`,
    `example.com/fn:latest@sha256:${'b'.repeat(64)}`,
  ];
  const r = await cp.request(`/apis/apps/v1/namespaces/${NS}/deployments?dryRun=All`, {
    method: 'POST',
    body: {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'defaulting' },
      spec: {
        selector: { matchLabels: { app: 'defaulting' } },
        template: {
          metadata: { labels: { app: 'defaulting' } },
          spec: { containers: images.map((image, i) => ({ name: `c${i}`, image })) },
        },
      },
    },
  });
  expect(r.status).toBe(201);
  const defaulted = (r.body as V1Deployment).spec!.template.spec!.containers.map((c) => [c.image, c.imagePullPolicy]);
  expect(defaulted).toEqual(images.map((image) => [image, defaultPullPolicy(image)]));
});

test('at steady state the operator writes nothing across resyncs: no fight with the server’s defaults', async () => {
  // no functions: FNMESH_FUNCTIONS is "", which the API server stores as no value
  await createFsvc('steady', {
    container: { image: 'example.com/fn:latest' },
    imagePullSecrets: [{ name: 'regcred' }],
  });
  const key = `${NS}/steady`;
  await waitFor(() => deployment('steady'), { timeoutMs: 20_000, what: 'the Deployment of steady' });
  // settled: the status written for the Deployment as it is
  await waitFor(() => operator.reconcileCount(key) >= 3, { timeoutMs: 20_000, what: 'three reconciles of steady' });
  const writes = (): number =>
    operator.writes((w) => w.namespace === NS && ['deployments', 'secrets'].includes(w.resource)).length;
  const before = writes();
  const generation = (await deployment('steady'))!.metadata!.generation;
  const count = operator.reconcileCount(key);
  const from = Date.now();
  // reconciles that span two resync periods (each resync reconciles the key again)
  await waitFor(() => operator.reconcileCount(key) >= count + 2 && Date.now() - from > 2 * RESYNC_MS, {
    timeoutMs: 4 * RESYNC_MS + 10_000,
    what: 'two resyncs of steady',
  });
  expect(writes()).toBe(before);
  expect((await deployment('steady'))!.metadata!.generation).toBe(generation);
});

test('the CA Secret goes with its FunctionService (the garbage collector, through the owner reference)', async () => {
  // The controller-manager's garbage collector re-reads API discovery every 30 s (fixed in its code): for a CRD
  // installed moments ago it learns the kind first, hence the long deadline.
  await waitFor(async () => (await secret(natsCaSecretName(NS, 'tls'))) === undefined, {
    timeoutMs: 90_000,
    intervalMs: 200,
    what: 'the CA Secret of the deleted FunctionService tls to be garbage-collected',
  });
});
