import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { V1Container, V1Deployment, V1Secret } from '@kubernetes/client-node';
import { silentLogger } from '../common/logger';
import { EventRecorder } from './events';
import type { KubeWriter, SecretWriter } from './kube-writer';
import { ConfigError } from '../common/errors';
import { parseFunctionService } from '../common/manifest';
import { SIDECAR_ENV } from '../common/sidecar-env';
import { makeTestPki, type TestPki } from '../test/helpers/tls-certs';
import { loadOperatorConfig } from './config';
import {
  OPERATOR_OWNED_ITEMS,
  defaultPullPolicy,
  desiredDeployment,
  type ClusterFunctionService,
} from './desired-deployment';
import { driftPaths } from './drift';
import { NatsCaFileSource } from './nats-ca-source';
import { desiredNatsCaSecret, natsCaSecretDecision, natsCaSecretName } from './nats-ca-secret';
import { FunctionServiceReconciler, syncFingerprint, type FunctionServiceObject } from './reconciler';
import { SIDECAR_CONTAINER_NAME } from './sidecar-injection';
import {
  CA_HASH_ANNOTATION,
  CA_MOUNT_DIR,
  CA_MOUNT_FILE,
  CA_SECRET_KEY,
  CA_VOLUME_NAME,
  parseNatsCaBundle,
  type NatsCaBundle,
} from './sidecar-nats-ca';

let pki: TestPki;
let caPem: string;
let otherPem: string;
beforeAll(() => {
  pki = makeTestPki();
  caPem = readFileSync(pki.caFile, 'utf8');
  otherPem = readFileSync(pki.otherCaFile, 'utf8');
});
afterAll(() => pki.remove());

const base = {
  FNMESH_SIDECAR_IMAGE: 'ghcr.io/fnmesh/fnmesh:0.1.0',
  FNMESH_SIDECAR_NATS_URL: 'tls://nats.example:4222',
};
const cfg = loadOperatorConfig(base).sidecar;

function service(spec: Record<string, unknown> = {}): ClusterFunctionService {
  const fs = parseFunctionService(
    {
      apiVersion: 'fnmesh.io/v1alpha1',
      kind: 'FunctionService',
      metadata: { name: 'orders', namespace: 'shop' },
      spec: { container: { image: 'example/orders:1' }, functions: [{ name: 'create' }], ...spec },
    },
    'test',
  );
  return { ...fs, metadata: { ...fs.metadata, uid: 'uid-1' } };
}

const podOf = (d: ReturnType<typeof desiredDeployment>) => d.spec!.template.spec!;
const sidecarOf = (d: ReturnType<typeof desiredDeployment>): V1Container =>
  podOf(d).initContainers!.find((c) => c.name === SIDECAR_CONTAINER_NAME)!;

describe('parseNatsCaBundle', () => {
  test('takes a PEM CA (and a bundle of two), normalised, with its SHA-256', () => {
    const one = parseNatsCaBundle(caPem, 'F');
    expect(one.pem).toBe(`${caPem.trim()}\n`);
    expect(one.sha256).toMatch(/^[0-9a-f]{64}$/);
    const two = parseNatsCaBundle(`# comment\n${caPem}\n\n${otherPem.replace(/\n/g, '\r\n')}`, 'F');
    expect(two.pem).toBe(`${caPem.trim()}\n${otherPem.trim()}\n`);
    expect(two.sha256).not.toBe(one.sha256);
  });

  test.each<[string, string, string]>([
    ['an empty file', '', 'F holds no PEM certificate'],
    ['DER or other text', 'not a certificate', 'F holds no PEM certificate'],
    ['a private key', '-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----\n', 'holds a PRIVATE KEY block'],
    [
      'a broken certificate',
      '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n',
      'certificate 1 is not a valid X.509',
    ],
  ])('refuses %s, naming the source and the fix', (_, text, says) => {
    expect(() => parseNatsCaBundle(text, 'F')).toThrow(ConfigError);
    expect(() => parseNatsCaBundle(text, 'F')).toThrow(says);
    expect(() => parseNatsCaBundle(text, 'F')).toThrow('-----BEGIN CERTIFICATE-----');
  });
});

describe('NatsCaFileSource', () => {
  test('reads the file, names the setting when it is missing or not PEM, and sees a kubelet-style swap', () => {
    const file = path.join(pki.dir, 'mounted-ca.crt');
    const missing = new NatsCaFileSource(file);
    expect(() => missing.read()).toThrow(`FNMESH_SIDECAR_NATS_TLS_CA_FILE (${file}) cannot be read`);
    writeFileSync(file, 'junk');
    expect(() => new NatsCaFileSource(file).read()).toThrow('FNMESH_SIDECAR_NATS_TLS_CA_FILE');
    writeFileSync(file, caPem);
    const source = new NatsCaFileSource(file);
    const first = source.read();
    expect(source.read()).toBe(first); // unchanged stat: not parsed again
    // a new file renamed over the old one (a new inode), as the kubelet's ..data swap does
    writeFileSync(`${file}.new`, otherPem);
    renameSync(`${file}.new`, file);
    expect(source.read().sha256).toBe(parseNatsCaBundle(otherPem, 'x').sha256);
  });
});

describe('the sidecars’ NATS CA in the desired Deployment', () => {
  test('without it: no volume, no mount, no FNMESH_NATS_TLS_CA, no annotation', () => {
    const d = desiredDeployment(service(), { ...cfg, natsAuth: 'none' });
    expect(podOf(d).volumes).toBeUndefined();
    expect(sidecarOf(d).volumeMounts).toBeUndefined();
    expect(sidecarOf(d).env!.map((e) => e.name)).not.toContain(SIDECAR_ENV.natsTlsCa);
    expect(d.spec!.template.metadata!.annotations).toBeUndefined();
  });

  test('with it: the Secret volume, only the sidecar mounts it read-only, FNMESH_NATS_TLS_CA is the mounted file', () => {
    const ca = parseNatsCaBundle(caPem, 'F');
    const d = desiredDeployment(service(), { ...cfg, natsAuth: 'jwt' }, ca);
    expect(podOf(d).volumes).toContainEqual({
      name: CA_VOLUME_NAME,
      secret: { secretName: natsCaSecretName('shop', 'orders'), defaultMode: 0o444 },
    });
    expect(sidecarOf(d).volumeMounts).toContainEqual({ name: CA_VOLUME_NAME, mountPath: CA_MOUNT_DIR, readOnly: true });
    expect(sidecarOf(d).volumeMounts).toHaveLength(2); // and the credentials
    expect(sidecarOf(d).env).toContainEqual({ name: SIDECAR_ENV.natsTlsCa, value: CA_MOUNT_FILE });
    expect(podOf(d).containers[0]!.volumeMounts).toBeUndefined();
    expect(d.spec!.template.metadata!.annotations).toEqual({ [CA_HASH_ANNOTATION]: ca.sha256 });
    expect(path.basename(CA_MOUNT_FILE)).toBe(CA_SECRET_KEY);
  });

  test('a new CA changes the pod template (a rollout) and the drift fingerprint', () => {
    const a = parseNatsCaBundle(caPem, 'F');
    const b = parseNatsCaBundle(otherPem, 'F');
    const applied = desiredDeployment(service(), cfg, a);
    expect(driftPaths(desiredDeployment(service(), cfg, a), applied)).toEqual([]);
    expect(driftPaths(desiredDeployment(service(), cfg, b), applied)).toEqual([
      `spec.template.metadata.annotations.${CA_HASH_ANNOTATION}`,
    ]);
    expect(syncFingerprint('u', 1, applied, a.sha256)).not.toBe(syncFingerprint('u', 1, applied, b.sha256));
  });

  test('the CA Secret: owned by the FunctionService, the bundle under ca.crt; written only when it differs', () => {
    const ca = parseNatsCaBundle(caPem, 'F');
    const owner = {
      apiVersion: 'fnmesh.io/v1alpha1',
      kind: 'FunctionService',
      name: 'orders',
      uid: 'uid-1',
      controller: true,
    };
    const want = { namespace: 'shop', name: natsCaSecretName('shop', 'orders'), ca, owner };
    const secret = desiredNatsCaSecret(want);
    expect(secret.metadata!.ownerReferences).toEqual([owner]);
    expect(Buffer.from(secret.data![CA_SECRET_KEY]!, 'base64').toString()).toBe(ca.pem);
    expect(natsCaSecretDecision(undefined, want)).toMatchObject({ action: 'apply' });
    expect(natsCaSecretDecision(secret, want)).toEqual({ action: 'none' });
    const other = parseNatsCaBundle(otherPem, 'F');
    expect(natsCaSecretDecision(secret, { ...want, ca: other })).toEqual({ action: 'apply', reason: 'the CA changed' });
    expect(natsCaSecretDecision(secret, { ...want, owner: { ...owner, uid: 'uid-2' } })).toMatchObject({
      action: 'apply',
    });
    const foreign: V1Secret = { ...secret, metadata: { ...secret.metadata, labels: {} } };
    expect(natsCaSecretDecision(foreign, want)).toMatchObject({
      action: 'refuse',
      message: expect.stringContaining('was not made by the fnmesh operator'),
    });
  });
});

describe('image pull policies and pull Secrets', () => {
  test.each<[string, string]>([
    ['example/orders', 'Always'],
    ['example/orders:latest', 'Always'],
    ['localhost:5000/orders', 'Always'],
    ['localhost:5000/orders:1', 'IfNotPresent'],
    ['example/orders:1', 'IfNotPresent'],
    [`example/orders@sha256:${'a'.repeat(64)}`, 'IfNotPresent'],
    [`example/orders:latest@sha256:${'a'.repeat(64)}`, 'Always'],
  ])("Kubernetes' default for %s is %s", (image, policy) => {
    expect(defaultPullPolicy(image)).toBe(policy);
  });

  test('FNMESH_SIDECAR_IMAGE_PULL_POLICY is validated and set on the sidecar; unset, the default for its image', () => {
    expect(sidecarOf(desiredDeployment(service(), cfg)).imagePullPolicy).toBe('IfNotPresent');
    const latest = loadOperatorConfig({ ...base, FNMESH_SIDECAR_IMAGE: 'fnmesh:latest' }).sidecar;
    expect(sidecarOf(desiredDeployment(service(), latest)).imagePullPolicy).toBe('Always');
    const never = loadOperatorConfig({ ...base, FNMESH_SIDECAR_IMAGE_PULL_POLICY: 'Never' }).sidecar;
    expect(sidecarOf(desiredDeployment(service(), never)).imagePullPolicy).toBe('Never');
    expect(() => loadOperatorConfig({ ...base, FNMESH_SIDECAR_IMAGE_PULL_POLICY: 'always' })).toThrow(
      /FNMESH_SIDECAR_IMAGE_PULL_POLICY.*Always/,
    );
  });

  test('spec.container.imagePullPolicy and spec.imagePullSecrets reach the pod', () => {
    const d = desiredDeployment(
      service({
        container: { image: 'example/orders:1', imagePullPolicy: 'Always' },
        imagePullSecrets: [{ name: 'regcred' }],
      }),
      cfg,
    );
    expect(podOf(d).containers[0]!.imagePullPolicy).toBe('Always');
    expect(podOf(d).imagePullSecrets).toEqual([{ name: 'regcred' }]);
    expect(podOf(desiredDeployment(service(), cfg)).imagePullSecrets).toEqual([]);
    expect(() => service({ container: { image: 'x:1', imagePullPolicy: 'Sometimes' } })).toThrow(
      'spec.container.imagePullPolicy',
    );
    expect(() => service({ imagePullSecrets: [{ name: 'Bad_Name' }] })).toThrow('spec.imagePullSecrets[0].name');
  });

  test("drift: the server's defaults are no drift; a policy or pull Secret taken out of the spec is", () => {
    const withAll = service({
      container: { image: 'example/orders:1', imagePullPolicy: 'Never' },
      imagePullSecrets: [{ name: 'regcred' }],
    });
    const drift = (fs: ClusterFunctionService, observed: unknown) =>
      driftPaths(desiredDeployment(fs, cfg), observed, { ownedNames: OPERATOR_OWNED_ITEMS });
    // as the server stores a Deployment applied without pull Secrets: the empty list left out
    const plain = structuredClone(desiredDeployment(service(), cfg));
    delete plain.spec!.template.spec!.imagePullSecrets;
    expect(drift(service(), plain)).toEqual([]);
    const applied = desiredDeployment(withAll, cfg);
    expect(drift(withAll, applied)).toEqual([]);
    expect(drift(service(), applied)).toEqual(
      expect.arrayContaining([
        'spec.template.spec.containers[function].imagePullPolicy',
        'spec.template.spec.imagePullSecrets[regcred]',
      ]),
    );
    // a second pull Secret added and the first taken out
    const two = service({
      container: { image: 'example/orders:1', imagePullPolicy: 'Never' },
      imagePullSecrets: [{ name: 'other' }],
    });
    expect(drift(two, applied)).toEqual([
      'spec.template.spec.imagePullSecrets[regcred]',
      'spec.template.spec.imagePullSecrets[other]',
    ]);
  });
});

describe('the reconciler with a sidecar CA', () => {
  function setup(read: () => NatsCaBundle) {
    const order: string[] = [];
    const stored = new Map<string, V1Secret>();
    const secrets: SecretWriter = {
      readSecret: async (ns, name) => stored.get(`${ns}/${name}`),
      applySecret: async (s) => {
        order.push(`secret ${s.metadata!.name}`);
        stored.set(`${s.metadata!.namespace}/${s.metadata!.name}`, s);
        return s;
      },
      createSecret: async () => undefined,
      addSecretData: async () => undefined,
    };
    const obj: FunctionServiceObject = {
      apiVersion: 'fnmesh.io/v1alpha1',
      kind: 'FunctionService',
      metadata: { name: 'orders', namespace: 'shop', uid: 'uid-1', generation: 1, resourceVersion: '1' },
      spec: { container: { image: 'example/orders:1' } },
    };
    let deployment: V1Deployment | undefined;
    const writer: KubeWriter = {
      applyDeployment: async (d) => {
        order.push('deployment');
        deployment = { ...structuredClone(d), metadata: { ...d.metadata, resourceVersion: '2', generation: 1 } };
        return deployment;
      },
      patchStatus: async () => '3',
      readDeployment: async () => undefined,
    };
    const reconciler = new FunctionServiceReconciler({
      functionServices: { get: () => obj },
      deployments: { get: () => deployment },
      writer,
      events: new EventRecorder({ sink: { create: async () => undefined }, instance: 'test' }),
      sidecar: cfg,
      natsCa: { source: { read }, secrets },
    });
    return {
      order,
      stored,
      run: () => reconciler.reconcile('shop/orders', silentLogger),
      deployment: () => deployment,
    };
  }

  test('writes the CA Secret before the Deployment, and nothing again while the CA stays', async () => {
    const ca = parseNatsCaBundle(caPem, 'F');
    const t = setup(() => ca);
    await t.run();
    expect(t.order).toEqual([`secret ${natsCaSecretName('shop', 'orders')}`, 'deployment']);
    await t.run();
    expect(t.order).toHaveLength(2);
    expect(t.deployment()!.spec!.template.metadata!.annotations![CA_HASH_ANNOTATION]).toBe(ca.sha256);
  });

  test('a CA file that turned bad fails the reconcile and writes nothing', async () => {
    const t = setup(() => {
      throw new ConfigError('FNMESH_SIDECAR_NATS_TLS_CA_FILE (f) holds no PEM certificate');
    });
    await expect(t.run()).rejects.toThrow('FNMESH_SIDECAR_NATS_TLS_CA_FILE');
    expect(t.order).toEqual([]);
  });
});
