import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type {
  V1PersistentVolume,
  V1PersistentVolumeClaim,
  V1PersistentVolumeSpec,
  V1Pod,
  V1PodSpec,
  V1Volume,
} from '@kubernetes/client-node';
import { parse } from 'yaml';
import { parseFunctionService } from '../common/manifest';
import { CREDS_MOUNT_DIR, credsSecretName, replicaIdentity } from '../common/nats-identity';
import { desiredDeployment, loadOperatorConfig, type ClusterFunctionService } from '../operator';
import {
  DEFAULT_TOKEN_EXPIRATION_SECONDS,
  formatMap,
  mountProblemMessage,
  mountScript,
  planVolumes,
  tokenDue,
  volumeNeeds,
  type ClaimObjects,
  type PlannedVolume,
  type VolumeObjects,
} from './volume-plan';

const repoRoot = path.resolve(__dirname, '..');
const b = (s: string): Buffer => Buffer.from(s);

function pod(spec: Partial<V1PodSpec>, meta: Partial<V1Pod['metadata']> = {}): V1Pod {
  return {
    metadata: { name: 'web-1', namespace: 'shop', uid: 'uid-1', labels: { app: 'web', tier: 'front' }, ...meta },
    spec: { containers: [{ name: 'app', image: 'app' }], ...spec },
  };
}

function objects(over: Partial<VolumeObjects> = {}): VolumeObjects {
  return {
    secrets: new Map([['db', { user: b('admin'), password: b('s3cret') }]]),
    configMaps: new Map([['settings', { 'mode.conf': b('fast'), level: b('3') }]]),
    tokens: new Map(),
    nodeName: 'fnmesh-local',
    ...over,
  };
}

function only(volumes: V1Volume[], o: VolumeObjects = objects()): PlannedVolume {
  const plan = planVolumes(pod({ volumes }), o);
  expect(plan.problems).toEqual([]);
  expect(plan.volumes).toHaveLength(1);
  return plan.volumes[0]!;
}

const files = (v: PlannedVolume): Array<[string, string, string]> =>
  v.kind === 'files' ? v.files.map((f) => [f.path, f.content.toString(), f.mode.toString(8)]) : [];

describe('volumeNeeds', () => {
  test('the Secrets, ConfigMaps, tokens and claims of the volumes, once each, sorted', () => {
    const p = pod({
      serviceAccountName: 'web',
      volumes: [
        { name: 'a', secret: { secretName: 'z-secret' } },
        { name: 'b', configMap: { name: 'cm' } },
        {
          name: 'c',
          projected: {
            sources: [
              { secret: { name: 'a-secret' } },
              { configMap: { name: 'cm' } },
              { serviceAccountToken: { path: 'token' } },
              { serviceAccountToken: { path: 'vault', audience: 'vault', expirationSeconds: 7200 } },
              { serviceAccountToken: { path: 'short', expirationSeconds: 60 } },
            ],
          },
        },
        { name: 'd', emptyDir: {} },
        { name: 'e', persistentVolumeClaim: { claimName: 'data-web-1' } },
        { name: 'f', persistentVolumeClaim: { claimName: 'cache', readOnly: true } },
      ],
    });
    expect(volumeNeeds(p)).toEqual({
      secrets: ['a-secret', 'z-secret'],
      configMaps: ['cm'],
      claims: ['cache', 'data-web-1'],
      tokens: [
        { key: '|3600', serviceAccountName: 'web', expirationSeconds: 3600 },
        { key: 'vault|7200', serviceAccountName: 'web', expirationSeconds: 7200, audience: 'vault' },
        // the API server's minimum lifetime is ten minutes
        { key: '|600', serviceAccountName: 'web', expirationSeconds: 600 },
      ],
    });
  });

  test('no volumes: nothing; no serviceAccountName: the default ServiceAccount', () => {
    expect(volumeNeeds(pod({}))).toEqual({ secrets: [], configMaps: [], tokens: [], claims: [] });
    const p = pod({ volumes: [{ name: 't', projected: { sources: [{ serviceAccountToken: { path: 't' } }] } }] });
    expect(volumeNeeds(p).tokens[0]!.serviceAccountName).toBe('default');
  });
});

describe('planVolumes: secret and configMap', () => {
  test('every key a file, mode 0644 by default', () => {
    expect(files(only([{ name: 's', secret: { secretName: 'db' } }]))).toEqual([
      ['password', 's3cret', '644'],
      ['user', 'admin', '644'],
    ]);
    expect(files(only([{ name: 'c', configMap: { name: 'settings' } }]))).toEqual([
      ['level', '3', '644'],
      ['mode.conf', 'fast', '644'],
    ]);
  });

  test('defaultMode for all files, items choose keys and paths, an item mode wins', () => {
    const v = only([
      {
        name: 's',
        secret: {
          secretName: 'db',
          defaultMode: 0o400,
          items: [
            { key: 'user', path: 'creds/user.txt' },
            { key: 'password', path: 'pw', mode: 0o440 },
          ],
        },
      },
    ]);
    expect(files(v)).toEqual([
      ['creds/user.txt', 'admin', '400'],
      ['pw', 's3cret', '440'],
    ]);
  });

  test('binary content is kept byte for byte', () => {
    const bytes = Buffer.from([0, 255, 10, 13]);
    const v = only(
      [{ name: 's', secret: { secretName: 'bin' } }],
      objects({ secrets: new Map([['bin', { k: bytes }]]) }),
    );
    expect(v.kind === 'files' && v.files[0]!.content.equals(bytes)).toBe(true);
  });

  test('a missing Secret or ConfigMap: the kubelet message naming it, with the fix', () => {
    const plan = planVolumes(
      pod({
        volumes: [
          { name: 'creds', secret: { secretName: 'nope' } },
          { name: 'conf', configMap: { name: 'gone' } },
        ],
      }),
      objects(),
    );
    expect(plan.volumes).toEqual([]);
    expect(plan.problems).toEqual([
      {
        volume: 'creds',
        message:
          'MountVolume.SetUp failed for volume "creds" : secret "nope" not found: create it in the pod\'s namespace, or mark the volume optional',
      },
      {
        volume: 'conf',
        message:
          'MountVolume.SetUp failed for volume "conf" : configmap "gone" not found: create it in the pod\'s namespace, or mark the volume optional',
      },
    ]);
    expect(mountProblemMessage(plan.problems)).toContain('; MountVolume.SetUp failed for volume "conf"');
  });

  test('optional: a missing object is an empty volume, a missing item key is left out', () => {
    expect(files(only([{ name: 's', secret: { secretName: 'nope', optional: true } }]))).toEqual([]);
    expect(
      files(
        only([
          {
            name: 's',
            secret: {
              secretName: 'db',
              optional: true,
              items: [
                { key: 'user', path: 'u' },
                { key: 'other', path: 'o' },
              ],
            },
          },
        ]),
      ),
    ).toEqual([['u', 'admin', '644']]);
  });

  test('an item naming a missing key, not optional: a problem naming the key', () => {
    const plan = planVolumes(
      pod({ volumes: [{ name: 's', secret: { secretName: 'db', items: [{ key: 'token', path: 't' }] } }] }),
      objects(),
    );
    expect(plan.problems[0]!.message).toBe(
      'MountVolume.SetUp failed for volume "s" : configuration of secret "db": key token not found (items name it): add the key, or mark the volume optional',
    );
  });

  test('an item path that escapes the volume is refused', () => {
    for (const p of ['../etc/passwd', '/abs', 'a//b', '..data']) {
      const plan = planVolumes(
        pod({ volumes: [{ name: 's', secret: { secretName: 'db', items: [{ key: 'user', path: p }] } }] }),
        objects(),
      );
      expect(plan.problems[0]!.message).toContain(`path "${p}" must be relative`);
    }
  });
});

describe('planVolumes: downwardAPI, emptyDir, hostPath, projected', () => {
  test("downwardAPI: name, namespace, uid, labels and annotations in the kubelet's format, a single label", () => {
    const p = pod(
      {
        volumes: [
          {
            name: 'info',
            downwardAPI: {
              items: [
                { path: 'name', fieldRef: { fieldPath: 'metadata.name' } },
                { path: 'ns', fieldRef: { fieldPath: 'metadata.namespace' } },
                { path: 'uid', fieldRef: { fieldPath: 'metadata.uid' } },
                { path: 'labels', fieldRef: { fieldPath: 'metadata.labels' } },
                { path: 'annotations', fieldRef: { fieldPath: 'metadata.annotations' }, mode: 0o600 },
                { path: 'app', fieldRef: { fieldPath: "metadata.labels['app']" } },
              ],
            },
          },
        ],
      },
      { annotations: { 'x/y': 'say "hi"' } },
    );
    const plan = planVolumes(p, objects());
    expect(plan.problems).toEqual([]);
    expect(files(plan.volumes[0]!)).toEqual([
      ['name', 'web-1', '644'],
      ['ns', 'shop', '644'],
      ['uid', 'uid-1', '644'],
      ['labels', 'app="web"\ntier="front"', '644'],
      ['annotations', 'x/y="say \\"hi\\""', '600'],
      ['app', 'web', '644'],
    ]);
    expect(formatMap(undefined)).toBe('');
  });

  test('downwardAPI: resourceFieldRef and unknown fields are problems that say what is modelled', () => {
    const plan = planVolumes(
      pod({
        volumes: [
          { name: 'r', downwardAPI: { items: [{ path: 'cpu', resourceFieldRef: { resource: 'limits.cpu' } }] } },
          { name: 'f', downwardAPI: { items: [{ path: 'ip', fieldRef: { fieldPath: 'status.podIP' } }] } },
        ],
      }),
      objects(),
    );
    expect(plan.problems.map((x) => x.message)).toEqual([
      'MountVolume.SetUp failed for volume "r" : downwardAPI item cpu: only fieldRef is modelled by fnmesh cluster (no resourceFieldRef: it sets no resource limits)',
      expect.stringContaining('fieldRef status.podIP is not one a downwardAPI volume supports'),
    ]);
  });

  test('emptyDir: a folder, or memory; other media refused', () => {
    expect(only([{ name: 'e', emptyDir: {} }])).toEqual({ name: 'e', kind: 'emptyDir', memory: false });
    expect(only([{ name: 'm', emptyDir: { medium: 'Memory', sizeLimit: '64Mi' } }])).toEqual({
      name: 'm',
      kind: 'emptyDir',
      memory: true,
      sizeLimit: '64Mi',
    });
    const plan = planVolumes(pod({ volumes: [{ name: 'h', emptyDir: { medium: 'HugePages' } }] }), objects());
    expect(plan.problems[0]!.message).toContain('emptyDir medium HugePages is not modelled');
  });

  test('hostPath: the folder itself, created for DirectoryOrCreate and FileOrCreate', () => {
    expect(only([{ name: 'h', hostPath: { path: '/data', type: 'DirectoryOrCreate' } }])).toEqual({
      name: 'h',
      kind: 'hostPath',
      path: '/data',
      create: 'directory',
    });
    expect(only([{ name: 'h', hostPath: { path: '/x.sock', type: 'FileOrCreate' } }])).toMatchObject({
      create: 'file',
    });
    expect(only([{ name: 'h', hostPath: { path: '/x' } }])).toMatchObject({ create: 'none' });
  });

  test('a volume type it does not model: the reason, naming the type and what it mounts', () => {
    const plan = planVolumes(
      pod({ volumes: [{ name: 'data', nfs: { server: 'nfs.example', path: '/exports' } }] }),
      objects(),
    );
    expect(plan.problems).toEqual([
      {
        volume: 'data',
        message:
          'MountVolume.SetUp failed for volume "data" : nfs volumes are not modelled by fnmesh cluster (it mounts configMap, secret, emptyDir, downwardAPI, projected, hostPath, persistentVolumeClaim): use one of those',
      },
    ]);
  });

  test("projected: the admission controller's kube-api-access volume gives token, ca.crt and namespace", () => {
    const v: V1Volume = {
      name: 'kube-api-access-abcde',
      projected: {
        defaultMode: 420,
        sources: [
          { serviceAccountToken: { expirationSeconds: 3607, path: 'token' } },
          { configMap: { name: 'kube-root-ca.crt', items: [{ key: 'ca.crt', path: 'ca.crt' }] } },
          {
            downwardAPI: {
              items: [{ path: 'namespace', fieldRef: { apiVersion: 'v1', fieldPath: 'metadata.namespace' } }],
            },
          },
        ],
      },
    };
    const o = objects({
      configMaps: new Map([['kube-root-ca.crt', { 'ca.crt': b('-----BEGIN CERTIFICATE-----') }]]),
      tokens: new Map([['|3607', { token: 'eyJ.token' }]]),
    });
    expect(files(only([v], o))).toEqual([
      ['token', 'eyJ.token', '644'],
      ['ca.crt', '-----BEGIN CERTIFICATE-----', '644'],
      ['namespace', 'shop', '644'],
    ]);
    // no token (the TokenRequest failed): the reason
    const failed = planVolumes(
      pod({ volumes: [v] }),
      objects({ ...o, tokens: new Map([['|3607', { error: '403 forbidden' }]]) }),
    );
    expect(failed.problems[0]!.message).toBe(
      'MountVolume.SetUp failed for volume "kube-api-access-abcde" : cannot get a token for ServiceAccount shop/default: 403 forbidden',
    );
  });

  test('projected: two sources writing one path, and an unmodelled source, are problems', () => {
    const twice = planVolumes(
      pod({
        volumes: [
          {
            name: 'p',
            projected: { sources: [{ secret: { name: 'db' } }, { secret: { name: 'db' } }] },
          },
        ],
      }),
      objects(),
    );
    expect(twice.problems[0]!.message).toContain('two projected sources write the same path password');
    const bundle = planVolumes(
      pod({ volumes: [{ name: 'p', projected: { sources: [{ clusterTrustBundle: { path: 'b' } }] } }] }),
      objects(),
    );
    expect(bundle.problems[0]!.message).toContain('a projected clusterTrustBundle source is not modelled');
  });
});

describe('planVolumes: persistentVolumeClaim', () => {
  const claimVolume: V1Volume = { name: 'data', persistentVolumeClaim: { claimName: 'data-web-1' } };
  const boundClaim = (over: Partial<V1PersistentVolumeClaim> = {}): V1PersistentVolumeClaim => ({
    metadata: { name: 'data-web-1', namespace: 'shop', uid: 'claim-uid' },
    spec: { storageClassName: 'fnmesh-local', volumeName: 'pvc-claim-uid' },
    status: { phase: 'Bound' },
    ...over,
  });
  const hostPathPV = (spec: Partial<V1PersistentVolumeSpec> = {}): V1PersistentVolume => ({
    metadata: { name: 'pvc-claim-uid' },
    spec: {
      claimRef: { namespace: 'shop', name: 'data-web-1', uid: 'claim-uid' },
      hostPath: { path: '/run/fnmesh/volumes/pvc-claim-uid', type: 'Directory' },
      ...spec,
    },
  });
  const withClaims = (entries: Record<string, ClaimObjects>): VolumeObjects =>
    objects({ claims: new Map(Object.entries(entries)) });
  const problemOf = (volumes: V1Volume[], o: VolumeObjects): string => {
    const plan = planVolumes(pod({ volumes }), o);
    expect(plan.volumes).toEqual([]);
    expect(plan.problems).toHaveLength(1);
    return plan.problems[0]!.message;
  };

  test("a bound claim: its PV's folder (hostPath or local), created only for a DirectoryOrCreate hostPath", () => {
    expect(only([claimVolume], withClaims({ 'data-web-1': { claim: boundClaim(), volume: hostPathPV() } }))).toEqual({
      name: 'data',
      kind: 'claim',
      claimName: 'data-web-1',
      volumeName: 'pvc-claim-uid',
      path: '/run/fnmesh/volumes/pvc-claim-uid',
      create: false,
      readOnly: false,
    });
    const local = hostPathPV({ hostPath: undefined, local: { path: '/mnt/disk1' } });
    expect(only([claimVolume], withClaims({ 'data-web-1': { claim: boundClaim(), volume: local } }))).toMatchObject({
      path: '/mnt/disk1',
      create: false,
    });
    const orCreate = hostPathPV({ hostPath: { path: '/srv/x', type: 'DirectoryOrCreate' } });
    expect(only([claimVolume], withClaims({ 'data-web-1': { claim: boundClaim(), volume: orCreate } }))).toMatchObject({
      path: '/srv/x',
      create: true,
    });
  });

  test('readOnly on the volume makes every mount of it read-only; otherwise as the mount asks', () => {
    const p = pod({
      containers: [
        {
          name: 'app',
          volumeMounts: [
            { name: 'ro', mountPath: '/ro' },
            { name: 'rw', mountPath: '/rw' },
            { name: 'rw', mountPath: '/rw-ro', readOnly: true },
          ],
        },
      ],
      volumes: [
        { name: 'ro', persistentVolumeClaim: { claimName: 'data-web-1', readOnly: true } },
        { name: 'rw', persistentVolumeClaim: { claimName: 'data-web-1' } },
      ],
    });
    const plan = planVolumes(p, withClaims({ 'data-web-1': { claim: boundClaim(), volume: hostPathPV() } }));
    expect(plan.problems).toEqual([]);
    expect(plan.mounts.app).toEqual([
      { volume: 'ro', mountPath: '/ro', readOnly: true },
      { volume: 'rw', mountPath: '/rw', readOnly: false },
      { volume: 'rw', mountPath: '/rw-ro', readOnly: true },
    ]);
  });

  test("a claim that does not exist: the kubelet's wording, with the fix", () => {
    expect(problemOf([claimVolume], withClaims({}))).toBe(
      'MountVolume.SetUp failed for volume "data" : error processing PVC shop/data-web-1: failed to fetch PVC from API server: persistentvolumeclaims "data-web-1" not found: create the claim in namespace shop (a StatefulSet makes its claims from its volumeClaimTemplates); the pod starts once it is bound',
    );
    // no claims map at all (an older caller): the same
    expect(problemOf([claimVolume], objects())).toContain('persistentvolumeclaims "data-web-1" not found');
  });

  test('a claim not bound yet, or being deleted: why the pod waits', () => {
    const pending = boundClaim({ spec: { storageClassName: 'fnmesh-local' }, status: { phase: 'Pending' } });
    expect(problemOf([claimVolume], withClaims({ 'data-web-1': { claim: pending } }))).toBe(
      'MountVolume.SetUp failed for volume "data" : error processing PVC shop/data-web-1: PVC is not bound (phase Pending): the pod starts once it is; a claim of StorageClass fnmesh-local with volumeBindingMode WaitForFirstConsumer is bound when the scheduler places a pod using it (not a pod given spec.nodeName): see kubectl describe pvc data-web-1 -n shop',
    );
    const classless = boundClaim({ spec: {}, status: {} });
    expect(problemOf([claimVolume], withClaims({ 'data-web-1': { claim: classless } }))).toContain(
      'PVC is not bound (phase Pending): the pod starts once it is; a claim with no StorageClass binds only to a PersistentVolume that matches it',
    );
    const deleting = boundClaim({
      metadata: { name: 'data-web-1', namespace: 'shop', uid: 'claim-uid', deletionTimestamp: new Date() },
    });
    expect(problemOf([claimVolume], withClaims({ 'data-web-1': { claim: deleting, volume: hostPathPV() } }))).toBe(
      'MountVolume.SetUp failed for volume "data" : error processing PVC shop/data-web-1: PVC is being deleted: a pod cannot start on a claim being deleted; use another claim',
    );
  });

  test("a bound claim whose PV is missing, not bound to it, not a folder, or Block: the kubelet's checks", () => {
    const claim = boundClaim();
    const check = (volume: V1PersistentVolume | undefined): string =>
      problemOf([claimVolume], withClaims({ 'data-web-1': volume ? { claim, volume } : { claim } }));
    const prefix = 'MountVolume.SetUp failed for volume "data" : error processing PVC shop/data-web-1: ';
    expect(check(undefined)).toBe(
      `${prefix}failed to fetch PV pvc-claim-uid from API server: persistentvolumes "pvc-claim-uid" not found`,
    );
    expect(check(hostPathPV({ claimRef: undefined }))).toBe(
      `${prefix}found PV object pvc-claim-uid but it has a nil pv.Spec.ClaimRef indicating it is not yet bound to the claim`,
    );
    expect(check(hostPathPV({ claimRef: { uid: 'other' } }))).toBe(
      `${prefix}found PV object pvc-claim-uid but its pv.Spec.ClaimRef.UID other does not point to claim.UID claim-uid`,
    );
    expect(
      check(hostPathPV({ hostPath: undefined, nfs: { server: 'n', path: '/e' }, capacity: { storage: '1Gi' } })),
    ).toBe(
      `${prefix}PersistentVolume pvc-claim-uid is a nfs volume; fnmesh cluster mounts hostPath and local PersistentVolumes (a folder of this machine): use the StorageClass fnmesh-local, or a hostPath PV`,
    );
    expect(check(hostPathPV({ volumeMode: 'Block' }))).toBe(
      'MountVolume.SetUp failed for volume "data" : volume data has volumeMode Block, but is specified in volumeMounts',
    );
    expect(check(hostPathPV({ hostPath: { path: 'relative' } }))).toContain('path relative must be an absolute path');
  });
});

describe('planVolumes: mounts', () => {
  test("each container's mounts, parents first; file volumes read-only, emptyDir as asked; subPath kept", () => {
    const plan = planVolumes(
      pod({
        volumes: [
          { name: 's', secret: { secretName: 'db' } },
          { name: 'scratch', emptyDir: {} },
        ],
        initContainers: [{ name: 'init', volumeMounts: [{ name: 'scratch', mountPath: '/work' }] }],
        containers: [
          {
            name: 'app',
            volumeMounts: [
              { name: 's', mountPath: '/etc/app/secret/' },
              { name: 'scratch', mountPath: '/etc', readOnly: true },
              { name: 's', mountPath: '/etc/app/user', subPath: 'user' },
            ],
          },
          { name: 'other' },
        ],
      }),
      objects(),
    );
    expect(plan.problems).toEqual([]);
    expect(plan.mounts).toEqual({
      init: [{ volume: 'scratch', mountPath: '/work', readOnly: false }],
      app: [
        { volume: 'scratch', mountPath: '/etc', readOnly: true },
        { volume: 's', mountPath: '/etc/app/secret', readOnly: true },
        { volume: 's', mountPath: '/etc/app/user', subPath: 'user', readOnly: true },
      ],
      other: [],
    });
  });

  test('a mount of no volume, a subPathExpr, an escaping subPath: problems', () => {
    const plan = planVolumes(
      pod({
        volumes: [{ name: 'e', emptyDir: {} }],
        containers: [
          {
            name: 'app',
            volumeMounts: [
              { name: 'missing', mountPath: '/m' },
              { name: 'e', mountPath: '/x', subPathExpr: '$(POD)' },
              { name: 'e', mountPath: '/y', subPath: '../up' },
            ],
          },
        ],
      }),
      objects(),
    );
    expect(plan.mounts.app).toEqual([]);
    expect(plan.problems.map((p) => p.message)).toEqual([
      'container app volumeMount missing at /m: the pod has no volume missing',
      'container app volumeMount e at /x: subPathExpr is not modelled by fnmesh cluster (use subPath)',
      'container app volumeMount e at /y: subPath: path "../up" must be relative, without ".." or empty elements, and not start with ".."',
    ]);
  });
});

describe("the operator's Deployment for examples/greeter.yaml, as fnmesh cluster runs it (FNMESH_NATS_AUTH=jwt)", () => {
  const fs = parseFunctionService(
    parse(readFileSync(path.join(repoRoot, 'examples', 'greeter.yaml'), 'utf8')),
    'examples/greeter.yaml',
  );
  const sidecar = loadOperatorConfig({
    FNMESH_SIDECAR_IMAGE: 'ghcr.io/fnmesh/fnmesh:0.1.0',
    FNMESH_SIDECAR_NATS_URL: 'nats://127.0.0.1:4222',
    FNMESH_NATS_AUTH: 'jwt',
  }).sidecar;
  const cfs: ClusterFunctionService = { ...fs, metadata: { ...fs.metadata, uid: 'fs-uid' } };
  const template = desiredDeployment(cfs, sidecar).spec!.template;
  const p: V1Pod = { metadata: { name: 'greeter-1', namespace: 'default', uid: 'u' }, spec: template.spec };
  const secret = credsSecretName(replicaIdentity('default', 'greeter'));

  test('the minted credentials Secret is read, its .creds mounted read-only into the sidecar alone, mode 0444', () => {
    expect(volumeNeeds(p)).toEqual({ secrets: [secret], configMaps: [], tokens: [], claims: [] });
    const plan = planVolumes(
      p,
      objects({ secrets: new Map([[secret, { 'nats.creds': b('-----BEGIN NATS USER JWT-----') }]]) }),
    );
    expect(plan.problems).toEqual([]);
    expect(files(plan.volumes[0]!)).toEqual([['nats.creds', '-----BEGIN NATS USER JWT-----', '444']]);
    expect(plan.mounts).toEqual({
      'fnmesh-sidecar': [{ volume: 'fnmesh-nats-creds', mountPath: CREDS_MOUNT_DIR, readOnly: true }],
      function: [],
    });
  });

  test('before the operator has minted it: the pod waits, saying which Secret', () => {
    const plan = planVolumes(p, objects({ secrets: new Map() }));
    expect(mountProblemMessage(plan.problems)).toBe(
      `MountVolume.SetUp failed for volume "fnmesh-nats-creds" : secret "${secret}" not found: create it in the pod's namespace, or mark the volume optional`,
    );
  });
});

describe('tokenDue', () => {
  const hour = DEFAULT_TOKEN_EXPIRATION_SECONDS * 1000;
  test('renewed once 80% of the lifetime has passed, or after 24 hours', () => {
    expect(tokenDue(0, hour, 0.79 * hour)).toBe(false);
    expect(tokenDue(0, hour, 0.8 * hour)).toBe(true);
    expect(tokenDue(0, 100 * hour, 23.9 * hour)).toBe(false);
    expect(tokenDue(0, 100 * hour, 24 * hour)).toBe(true);
  });
});

describe('mountScript', () => {
  test('opens every source first, binds each at its target (made when missing) through its fd, remounts read-only ones, then execs the argv', () => {
    expect(
      mountScript([
        { source: '/run/pods/a/volumes/s', target: '/etc/app', readOnly: true },
        { source: "/run/it's", target: '/data', readOnly: false },
      ]),
    ).toBe(
      [
        'set -e',
        `exec 10<'/run/pods/a/volumes/s'`,
        `exec 11<'/run/it'\\''s'`,
        `if [ -d /proc/$$/fd/10 ]; then mkdir -p '/etc/app'; else mkdir -p "$(dirname '/etc/app')"; [ -e '/etc/app' ] || : > '/etc/app'; fi`,
        `mount --no-canonicalize --bind /proc/$$/fd/10 '/etc/app'`,
        `mount -o remount,bind,ro '/etc/app'`,
        `if [ -d /proc/$$/fd/11 ]; then mkdir -p '/data'; else mkdir -p "$(dirname '/data')"; [ -e '/data' ] || : > '/data'; fi`,
        `mount --no-canonicalize --bind /proc/$$/fd/11 '/data'`,
        'echo mounted >&3',
        'exec 3>&- 10<&- 11<&- "$@"',
      ].join('\n'),
    );
    expect(mountScript([])).toBe('set -e\necho mounted >&3\nexec 3>&- "$@"');
  });

  test('readOnlyRoot: a write outside the volumes fails (EROFS), a write to a volume works', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'mount-script-ro-'));
    try {
      const volume = path.join(dir, 'volume');
      mkdirSync(volume);
      // through a symlink, as /var/run/nats is /run/nats: the kernel lists the mount at the resolved path
      mkdirSync(path.join(dir, 'real'));
      symlinkSync(path.join(dir, 'real'), path.join(dir, 'link'));
      const target = path.join(dir, 'link', 'mounted');
      const script = mountScript([{ source: volume, target, readOnly: false }], { readOnlyRoot: true });
      const write = `echo a > ${target}/ok && echo b > ${dir}/outside; echo "exit $?"`;
      const r = spawnSync(
        'unshare',
        ['--mount', '--propagation', 'private', '--', 'bash', '-c', script, 'x', 'bash', '-c', write],
        {
          encoding: 'utf8',
          stdio: ['ignore', 'pipe', 'pipe', 'pipe'],
        },
      );
      expect(r.stdout).toBe('exit 1\n');
      expect(r.stderr).toMatch(/Read-only file system/);
      expect(readFileSync(path.join(volume, 'ok'), 'utf8')).toBe('a\n');
      expect(r.stderr).not.toMatch(/mounted\/ok/);
      expect(existsSync(path.join(dir, 'outside'))).toBe(false);
      // without it the same write succeeds
      const rw = spawnSync(
        'unshare',
        [
          '--mount',
          '--propagation',
          'private',
          '--',
          'bash',
          '-c',
          mountScript([{ source: volume, target, readOnly: false }]),
          'x',
          'bash',
          '-c',
          write,
        ],
        {
          encoding: 'utf8',
          stdio: ['ignore', 'pipe', 'pipe', 'pipe'],
        },
      );
      expect(rw.stdout).toBe('exit 0\n');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("a volume that covers the image's folder (an emptyDir at /tmp, the checkout under /tmp) does not hide the image", () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'mount-script-keep-'));
    try {
      const cover = path.join(dir, 'cover');
      const image = path.join(dir, 'ci', 'main');
      const elsewhere = path.join(dir, 'other');
      mkdirSync(cover);
      mkdirSync(path.join(image, 'bin'), { recursive: true });
      mkdirSync(elsewhere);
      writeFileSync(path.join(image, 'bin', 'app.js'), 'the image');
      writeFileSync(path.join(elsewhere, 'f'), 'not kept');
      let runs = 0;
      const run = (keep: string[], readOnlyRoot = false): ReturnType<typeof spawnSync> => {
        // a fresh volume each run: a kept path leaves its leading folders in the volume
        const cover = path.join(dir, `cover-${runs++}`);
        mkdirSync(cover);
        return spawnSync(
          'unshare',
          [
            '--mount',
            '--propagation',
            'private',
            '--',
            'bash',
            '-c',
            mountScript([{ source: cover, target: dir, readOnly: false }], { keep, readOnlyRoot }),
            'x',
            'bash',
            '-c',
            `cat ${path.join(image, 'bin', 'app.js')}; echo; ls ${dir}; echo x > ${path.join(image, 'w')} 2>/dev/null && echo writable || echo read-only; cat ${path.join(elsewhere, 'f')} 2>/dev/null || echo hidden`,
          ],
          { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe', 'pipe'] },
        );
      };
      // kept: the image is there at its own path; the volume has only the folders leading to it
      const kept = run([image]);
      expect(kept.stderr).toBe('');
      expect(kept.stdout).toBe('the image\nci\nwritable\nhidden\n');
      // with a read-only root the kept image is read-only too
      const ro = run([image], true);
      expect(ro.stdout).toBe('the image\nci\nread-only\nhidden\n');
      // not kept: hidden, as before (nothing to read, an empty volume, nowhere to write)
      expect(run([]).stdout).toBe('\nread-only\nhidden\n');
      // a kept path that no volume covers is left as it is (no mount, nothing made)
      const uncovered = spawnSync(
        'unshare',
        [
          '--mount',
          '--propagation',
          'private',
          '--',
          'bash',
          '-c',
          mountScript([{ source: cover, target: path.join(dir, 'elsewhere-target'), readOnly: false }], {
            keep: [image],
          }),
          'x',
          'bash',
          '-c',
          `grep -c ' ${image} ' /proc/self/mountinfo || true`,
        ],
        { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe', 'pipe'] },
      );
      expect(uncovered.stdout).toBe('0\n');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('a mount that covers the folder of a later source (an emptyDir at /tmp) does not hide it', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'mount-script-'));
    try {
      const cover = path.join(dir, 'cover');
      const secret = path.join(dir, 'src', 'secret');
      mkdirSync(cover);
      mkdirSync(secret, { recursive: true });
      writeFileSync(path.join(secret, 'token'), 'abc');
      const target = path.join(os.tmpdir(), `mount-script-target-${process.pid}`);
      // the first mount covers dir (where the second source lives), as an emptyDir at /tmp covers the run folder
      const script = mountScript([
        { source: cover, target: dir, readOnly: false },
        { source: secret, target, readOnly: true },
      ]);
      const r = spawnSync(
        'unshare',
        ['--mount', '--propagation', 'private', '--', 'bash', '-c', script, 'x', 'cat', path.join(target, 'token')],
        {
          encoding: 'utf8',
          stdio: ['ignore', 'pipe', 'pipe', 'pipe'],
        },
      );
      rmSync(target, { recursive: true, force: true });
      expect(r.stderr).toBe('');
      expect(r.stdout).toBe('abc');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
