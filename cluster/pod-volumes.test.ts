import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { V1PersistentVolume, V1PersistentVolumeClaim, V1Pod } from '@kubernetes/client-node';
import { PodVolumes, type VolumeSource } from './pod-volumes';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'fnmesh-podvol-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const pod: V1Pod = {
  metadata: { name: 'web-1', namespace: 'shop', uid: 'uid-1' },
  spec: {
    containers: [
      {
        name: 'app',
        volumeMounts: [
          { name: 'sa', mountPath: '/var/run/secrets/kubernetes.io/serviceaccount' },
          { name: 'scratch', mountPath: '/work', subPath: 'a/b' },
        ],
      },
    ],
    volumes: [
      { name: 'sa', projected: { sources: [{ serviceAccountToken: { path: 'token', expirationSeconds: 1000 } }] } },
      { name: 'scratch', emptyDir: {} },
      { name: 'mem', emptyDir: { medium: 'Memory' } },
    ],
  },
};

/** The TokenRequests made, answering each with a numbered token valid for its expirationSeconds. */
function tokenSource(fail: () => boolean): VolumeSource & { requests: unknown[] } {
  const requests: unknown[] = [];
  return {
    requests,
    secret: () => Promise.resolve(undefined),
    configMap: () => Promise.resolve(undefined),
    claim: () => Promise.resolve(undefined),
    volume: () => Promise.resolve(undefined),
    token: (namespace, serviceAccount, request) => {
      requests.push({ namespace, serviceAccount, ...request });
      if (fail()) return Promise.reject(new Error('503 the API server is unavailable'));
      return Promise.resolve({
        token: `token-${requests.length}`,
        expiresAt: new Date(T0 + request.expirationSeconds * 1000),
      });
    },
  };
}
const T0 = Date.parse('2026-12-03T12:00:00Z');

describe('PodVolumes', () => {
  test('a token bound to the pod, kept until 80% of its lifetime, then renewed; a failed renewal keeps the valid one', async () => {
    let failing = false;
    const source = tokenSource(() => failing);
    const v = new PodVolumes(pod, dir, source, 'node-1');
    const tokenFile = path.join(v.volumeDir('sa'), 'token');

    expect((await v.sync(T0)).changed).toEqual(['sa']);
    expect(readFileSync(tokenFile, 'utf8')).toBe('token-1');
    expect(source.requests).toEqual([
      { namespace: 'shop', serviceAccount: 'default', expirationSeconds: 1000, podName: 'web-1', podUid: 'uid-1' },
    ]);
    expect((await v.sync(T0 + 799_000)).changed).toEqual([]);
    expect(source.requests).toHaveLength(1);

    failing = true;
    const kept = await v.sync(T0 + 800_000);
    expect(kept.plan.problems).toEqual([]);
    expect(readFileSync(tokenFile, 'utf8')).toBe('token-1');

    failing = false;
    expect((await v.sync(T0 + 801_000)).changed).toEqual(['sa']);
    expect(readFileSync(tokenFile, 'utf8')).toBe('token-3');
  });

  test('no token at all: the reason, and nothing mounted', async () => {
    const v = new PodVolumes(
      pod,
      dir,
      tokenSource(() => true),
      'node-1',
    );
    const { plan } = await v.sync(T0);
    expect(plan.problems[0]!.message).toBe(
      'MountVolume.SetUp failed for volume "sa" : cannot get a token for ServiceAccount shop/default: 503 the API server is unavailable',
    );
    expect(v.hostMounts('app')).toEqual([]);
  });

  test("the container's mounts on this machine; a missing emptyDir subPath is made; Memory dirs for the sandbox", async () => {
    const v = new PodVolumes(
      pod,
      dir,
      tokenSource(() => false),
      'node-1',
    );
    await v.sync(T0);
    expect(v.hostMounts('app')).toEqual([
      { source: v.volumeDir('scratch') + '/a/b', target: '/work', readOnly: false },
      { source: v.volumeDir('sa'), target: '/var/run/secrets/kubernetes.io/serviceaccount', readOnly: true },
    ]);
    expect(statSync(path.join(v.volumeDir('scratch'), 'a', 'b')).isDirectory()).toBe(true);
    expect(v.memoryDirs()).toEqual([v.volumeDir('mem')]);
    v.remove();
    expect(existsSync(path.join(dir, 'volumes'))).toBe(false);
    // removed: a sync still under way writes nothing back
    await v.sync(T0);
    expect(existsSync(path.join(dir, 'volumes'))).toBe(false);
  });
});

describe('PodVolumes with a persistentVolumeClaim', () => {
  const claimPod: V1Pod = {
    metadata: { name: 'nats-0', namespace: 'shop', uid: 'uid-2' },
    spec: {
      containers: [{ name: 'nats', volumeMounts: [{ name: 'data', mountPath: '/data', subPath: 'js' }] }],
      volumes: [{ name: 'data', persistentVolumeClaim: { claimName: 'data-nats-0' } }],
    },
  };
  const claim = (phase: string): V1PersistentVolumeClaim => ({
    metadata: { name: 'data-nats-0', namespace: 'shop', uid: 'c-1' },
    spec: { volumeName: phase === 'Bound' ? 'pvc-c-1' : undefined },
    status: { phase },
  });
  const pv = (folder: string): V1PersistentVolume => ({
    metadata: { name: 'pvc-c-1' },
    spec: { claimRef: { uid: 'c-1' }, hostPath: { path: folder, type: 'Directory' } },
  });

  function claimSource(state: { phase: string; folder: string }): VolumeSource & { claimReads: number } {
    const source = {
      claimReads: 0,
      secret: () => Promise.resolve(undefined),
      configMap: () => Promise.resolve(undefined),
      token: () => Promise.reject(new Error('no tokens here')),
      claim: (ns: string, name: string) => {
        source.claimReads++;
        return Promise.resolve(ns === 'shop' && name === 'data-nats-0' ? claim(state.phase) : undefined);
      },
      volume: (name: string) => Promise.resolve(name === 'pvc-c-1' ? pv(state.folder) : undefined),
    };
    return source;
  }

  test('waits while the claim is Pending, then binds the PV folder (subPath made); kept as mounted', async () => {
    const folder = path.join(dir, 'pv-folder');
    mkdirSync(folder);
    const state = { phase: 'Pending', folder };
    const source = claimSource(state);
    const v = new PodVolumes(claimPod, path.join(dir, 'pod'), source, 'node-1');
    expect((await v.sync()).plan.problems[0]!.message).toContain(
      'MountVolume.SetUp failed for volume "data" : error processing PVC shop/data-nats-0: PVC is not bound (phase Pending)',
    );
    expect(v.hostMounts('nats')).toEqual([]);
    state.phase = 'Bound';
    expect((await v.sync()).plan.problems).toEqual([]);
    expect(v.hostMounts('nats')).toEqual([{ source: path.join(folder, 'js'), target: '/data', readOnly: false }]);
    expect(statSync(path.join(folder, 'js')).isDirectory()).toBe(true);
    // mounted: a claim being deleted later does not unmount it (the kubelet checks only before it mounts)
    const reads = source.claimReads;
    state.phase = 'Lost';
    expect((await v.sync()).plan.problems).toEqual([]);
    expect(source.claimReads).toBe(reads);
  });

  test("a bound claim whose PV folder is missing: the kubelet's hostPath type check, nothing mounted", async () => {
    const missing = path.join(dir, 'gone');
    const v = new PodVolumes(claimPod, path.join(dir, 'pod'), claimSource({ phase: 'Bound', folder: missing }), 'n');
    expect((await v.sync()).plan.problems).toEqual([
      {
        volume: 'data',
        message: `MountVolume.SetUp failed for volume "data" : hostPath type check failed: ${missing} is not a directory (the folder of PersistentVolume pvc-c-1, claim data-nats-0)`,
      },
    ]);
    expect(v.hostMounts('nats')).toEqual([]);
    expect(existsSync(missing)).toBe(false);
  });
});
